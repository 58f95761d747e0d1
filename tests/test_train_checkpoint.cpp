// A training checkpoint read back by TaskTrainer::load (qkv train --resume, eval, sample, attention):
// the settings it stores decide every size that gets allocated, so they are checked field by field
// (a message names the file, the key and the value), the file must carry qkv's own checksum, and a
// 64-bit seed comes back exactly.
#include <catch2/catch.hpp>

#include <limits>

#include "qkv/io/safetensors.hpp"
#include "qkv/train/train.hpp"
#include "support.hpp"

using namespace qkv;
using Catch::Contains;

namespace {

// A tiny run (1 layer, C = 8, copy 4 digits), a few steps, saved.
TaskTrainConfig tiny(std::uint64_t seed = 0) {
    TaskTrainConfig c;
    c.task = {"copy", 4, true};
    c.layers = 1;
    c.heads = 2;
    c.dim = 8;
    c.batch = 4;
    c.max_steps = 3;
    c.eval_every = 100;
    c.eval_size = 10;
    c.seed = seed;
    return c;
}

std::string saved_tiny(const test::TempDir& dir, std::uint64_t seed = 0) {
    TaskTrainer t(tiny(seed));
    t.step();
    const std::string path = dir / "tiny.safetensors";
    t.save(path);
    return path;
}

// Rewrite a qkv file with one metadata entry changed (or removed, for an empty value), the way a
// careful attacker would: save_safetensors recomputes the checksum, so only the checks on the
// values themselves can stop it.
void edit_metadata(const std::string& path, const std::string& key, const std::string& value) {
    io::SafeTensors f = io::load_safetensors(path);
    if (value.empty()) f.metadata.erase(key);
    else f.metadata[key] = value;
    io::save_safetensors(path, f.tensors, f.metadata);
}

}  // namespace

TEST_CASE("a checkpoint's settings are checked field by field, naming the key and the value", "[train][checkpoint]") {
    const test::TempDir dir("train_ckpt");
    struct Edit {
        const char* key;
        const char* value;
        const char* message;
    };
    const Edit edits[] = {
        {"run.dim", "64.9", "metadata 'run.dim' must be an integer in [1, 65536], got '64.9'"},
        {"run.dim", "4611686018427387904", "metadata 'run.dim' must be an integer in [1, 65536], got '4611686018427387904'"},
        {"run.dim", "0", "'run.dim' must be an integer in [1, 65536], got '0'"},
        {"run.layers", "nan", "metadata 'run.layers' must be an integer in [1, 1024], got 'nan'"},
        {"run.heads", "3", "metadata 'run.heads' (3) must divide 'run.dim' (8)"},
        {"run.seed", "-1", "metadata 'run.seed' must be an integer in [0, 18446744073709551615], got '-1'"},
        {"run.seed", "18446744073709551616", "'run.seed' must be an integer in [0, 18446744073709551615]"},
        {"run.dtype", "f16", "metadata 'run.dtype' must be one of f32, f64, got 'f16'"},
        {"run.eval_size", "1e9", "metadata 'run.eval_size' must be an integer in [1, 1000000], got '1e9'"},
        {"run.eval_size", "1000000000", "'run.eval_size' must be an integer in [1, 1000000], got '1000000000'"},
        {"run.batch", " 4", "'run.batch' must be an integer in [1, 1000000], got ' 4'"},
        {"run.max_steps", "3x", "'run.max_steps' must be an integer in [1, 1000000000000], got '3x'"},
        {"run.lr", "nan", "metadata 'run.lr' must be a finite number > 0, got 'nan'"},
        {"run.lr", "-0.001", "metadata 'run.lr' must be a finite number > 0, got '-0.001'"},
        {"run.weight_decay", "inf", "metadata 'run.weight_decay' must be a finite number >= 0, got 'inf'"},
        {"run.reversed", "yes", "metadata 'run.reversed' must be one of 0, 1, got 'yes'"},
        {"run.task", "nope", "metadata 'run.task' must be one of copy, reverse, sort, add, recall, got 'nope'"},
        {"run.length", "5000", "metadata 'run.task' and 'run.length' do not make a valid task: make_task: copy length 5000"},
        {"run.dim", "", "not a qkv training checkpoint (metadata 'run.dim' missing)"},
    };
    for (const auto& e : edits) {
        DYNAMIC_SECTION(e.key << " = '" << e.value << "'") {
            const std::string path = saved_tiny(dir);
            edit_metadata(path, e.key, e.value);
            CHECK_THROWS_WITH(TaskTrainer::load(path), Contains(fmt::format("load: '{}': ", path)) && Contains(e.message));
        }
    }
    SECTION("the unedited file loads") {
        const std::string path = saved_tiny(dir);
        CHECK(TaskTrainer::load(path)->steps_done() == 1);
    }
}

TEST_CASE("seeds above 2^53 survive a save and a load exactly", "[train][checkpoint]") {
    const test::TempDir dir("train_seed");
    for (const std::uint64_t seed : {(std::uint64_t(1) << 53) + 1, std::numeric_limits<std::uint64_t>::max(),
                                     std::uint64_t(12345678901234567891u)}) {
        const std::string path = saved_tiny(dir, seed);
        CHECK(TaskTrainer::load(path)->config().seed == seed);
    }
}

TEST_CASE("a training checkpoint without qkv's checksum is refused", "[train][checkpoint]") {
    const test::TempDir dir("train_crc");
    const std::string path = saved_tiny(dir);
    // Remove qkv's two keys, keeping the JSON valid by blanking them out with spaces.
    std::string bytes = test::read_bytes(path);
    const auto begin = bytes.find("\"qkv.crc32\"");
    const auto end = bytes.find("\"safetensors/1\",", begin);
    REQUIRE(begin != std::string::npos);
    REQUIRE(end != std::string::npos);
    const std::size_t n = end + std::string("\"safetensors/1\",").size() - begin;
    bytes.replace(begin, n, std::string(n, ' '));
    test::write_bytes(path, bytes);
    REQUIRE_FALSE(io::load_safetensors(path).crc_verified);  // still a valid safetensors file

    CHECK_THROWS_WITH(TaskTrainer::load(path), Contains("the file has no qkv checksum (metadata 'qkv.crc32' and "
                                                         "'qkv.format', which every checkpoint qkv saves carries)"));
    // The weights alone still load into a model (a file from another program is not an error) ...
    TaskTrainer fresh(tiny());
    CHECK_NOTHROW(io::load_checkpoint(path, fresh.model()));
    // ... but not the training state, which only qkv writes.
    io::TrainState state;
    CHECK_THROWS_WITH(io::load_checkpoint(path, fresh.model(), nullptr, &state), Contains("training state cannot be trusted"));
}
