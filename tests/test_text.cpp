// The text trainer: the 90/10 split and its tokenizers, clear errors for texts that cannot be used,
// the schedule, fixed validation windows, exact resume (dropout included), checkpoints that rebuild
// the model and tokenizer from metadata alone — and reject forged metadata before allocating — and
// generation that gives the same text on 1 and 2 threads.
#include <catch2/catch.hpp>

#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "qkv/core/autograd.hpp"
#include "qkv/io/safetensors.hpp"
#include "qkv/kernels/parallel.hpp"
#include "qkv/ops/ops.hpp"
#include "qkv/train/text.hpp"
#include "qkv/train/train.hpp"
#include "support.hpp"

using namespace qkv;
using Catch::Contains;

namespace {

std::string corpus() {
    std::ifstream in(std::string(QKV_SOURCE_DIR) + "/data/corpus.txt", std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

// A tiny, fast configuration.
TextTrainConfig tiny() {
    TextTrainConfig c;
    c.layers = 1;
    c.heads = 2;
    c.dim = 16;
    c.context = 16;
    c.batch = 4;
    c.max_steps = 20;
    c.warmup = 5;
    c.eval_every = 10;
    c.eval_tokens = 256;
    return c;
}

std::string temp_path(const std::string& name) { return (std::filesystem::temp_directory_path() / name).string(); }

std::vector<float> flat_parameters(nn::GPT& m) {
    std::vector<float> all;
    for (const auto& [name, p] : m.named_parameters()) {
        const auto v = p.to_vector<float>();
        all.insert(all.end(), v.begin(), v.end());
    }
    return all;
}

}  // namespace

TEST_CASE("tokenize_text: the last 10% validates, char sees the whole text, BPE learns from the training part", "[text]") {
    const std::string text = corpus();
    TextTrainConfig c = tiny();
    const TokenizedText chars = tokenize_text(text, c, "corpus");
    CHECK(chars.tokenizer->kind() == "char");
    CHECK(chars.tokenizer->vocab_size() == 60);
    CHECK(chars.train.size() == 26788);  // the same split as tutorial 14's load_corpus
    CHECK(chars.validation.size() == 2977);
    CHECK(chars.train_bytes + chars.validation_bytes == std::int64_t(text.size()));
    CHECK(chars.tokenizer->decode(chars.validation) == text.substr(26788));

    c.tokenizer = "bpe";
    c.vocab_size = 300;
    const TokenizedText bpe = tokenize_text(text, c, "corpus");
    CHECK(bpe.tokenizer->vocab_size() == 301);
    const auto* b = dynamic_cast<const data::BpeTokenizer*>(bpe.tokenizer.get());
    REQUIRE(b != nullptr);
    const auto alone = data::BpeTokenizer::train(text.substr(0, 26788), 300);
    CHECK(b->serialize() == alone.serialize());  // learned from the first 90% only
    CHECK(bpe.tokenizer->decode(bpe.train) + bpe.tokenizer->decode(bpe.validation) == text);
    CHECK(bpe.train.size() < chars.train.size());

    // The cut never splits a UTF-8 character: "a" and 10 two-byte characters (21 bytes); 90% is
    // byte 18, the second byte of an é, so the cut moves back to byte 17.
    std::string accents = "a";
    for (int i = 0; i < 10; ++i) accents += "\xC3\xA9";
    c = tiny();
    c.context = 1;
    const TokenizedText e = tokenize_text(accents, c, "accents");
    CHECK(e.train.size() == 9);
    CHECK(e.validation.size() == 2);
    CHECK(e.validation_bytes == 4);
    // A special-token text becomes the end-of-text token.
    c.tokenizer = "bpe";
    c.vocab_size = 256;
    const TokenizedText s = tokenize_text(std::string(40, 'a') + "<|endoftext|>" + std::string(40, 'b'), c, "s");
    CHECK(std::count(s.train.begin(), s.train.end(), s.tokenizer->end_of_text()) == 1);
}

TEST_CASE("tokenize_text: texts that cannot train a model get errors naming the file and the value", "[text]") {
    TextTrainConfig c = tiny();
    CHECK_THROWS_WITH(tokenize_text("", c, "empty.txt"), Contains("empty.txt: the file is empty"));
    c.context = 64;
    CHECK_THROWS_WITH(tokenize_text("Hello, fox.", c, "short.txt"),
                      Contains("short.txt: the training part (the first 90%) has 9 tokens (9 bytes), fewer than one "
                               "window of context + 1 = 65 tokens"));
    c.context = 4;
    CHECK_THROWS_WITH(tokenize_text("Hello, fox, hello.", c, "short.txt"),
                      Contains("the validation part (the last 10%) has 2 tokens (2 bytes), fewer than one window of "
                               "context + 1 = 5 tokens"));
    const std::string binary("\x7F" "ELF\x02\x01\x01\x00\xFF\xFE\x00\x00 binary", 18);
    CHECK_THROWS_WITH(tokenize_text(binary, c, "a.out"),
                      Contains("a.out: the character tokenizer needs UTF-8 text") && Contains("byte 0xFF at offset 8") &&
                          Contains("'--tokenizer bpe' reads any bytes"));
    c.tokenizer = "bpe";
    c.vocab_size = 256;
    c.context = 1;
    CHECK(tokenize_text(binary, c, "a.out").train.size() == 16);  // BPE reads any bytes
    c.vocab_size = 100000;
    CHECK_THROWS_AS(tokenize_text(corpus(), c, "corpus.txt"), VocabSizeError);
    CHECK_THROWS_WITH(tokenize_text(corpus(), c, "corpus.txt"),
                      Contains("vocab_size 100000 is more than corpus.txt supports") && Contains("so at most"));
    c.tokenizer = "words";
    CHECK_THROWS_WITH(tokenize_text("abc", c, "x"), Contains("tokenizer must be 'char' or 'bpe', got 'words'"));
}

TEST_CASE("text training: warm-up then cosine, and nanoGPT's baby recipe", "[text]") {
    TextTrainConfig c = tiny();
    c.lr = 1e-3;
    c.min_lr = 1e-4;
    c.warmup = 10;
    c.max_steps = 110;
    const TextTrainer t(c, corpus(), "corpus");
    CHECK(t.lr_at(0) == Approx(1e-4));   // (0 + 1)/10 of the peak
    CHECK(t.lr_at(9) == Approx(1e-3));
    CHECK(t.lr_at(60) == Approx(5.5e-4));  // half way down the cosine
    CHECK(t.lr_at(110) == Approx(1e-4));
    c.cosine = false;
    CHECK(TextTrainer(c, corpus(), "corpus").lr_at(50) == 1e-3);
    const TextTrainConfig b = TextTrainConfig::baby();
    CHECK(b.layers == 4);
    CHECK(b.heads == 4);
    CHECK(b.dim == 128);
    CHECK(b.context == 64);
    CHECK(b.batch == 12);
    CHECK(b.max_steps == 2000);
    CHECK(b.lr == 1e-3);
    CHECK(b.dropout == 0);
}

TEST_CASE("text training: the loss falls, and evaluate() is the mean over the documented windows", "[text]") {
    TextTrainConfig c = tiny();
    c.max_steps = 60;
    c.eval_every = 30;
    c.lr = 3e-3;
    TextTrainer t(c, corpus(), "corpus");
    const double before = t.evaluate();
    CHECK(before == Approx(std::log(60.0)).epsilon(0.02));
    const auto history = t.run();
    REQUIRE(history.size() == 2);
    CHECK(history[0].step == 30);
    CHECK(history[1].step == 60);
    CHECK(history[1].validation_loss < before - 0.5);
    CHECK(history[1].bits_per_byte == Approx(history[1].validation_loss / std::log(2.0)));  // 1 byte per token
    CHECK(t.curve().size() == 6);  // every 10 steps
    CHECK(std::isnan(t.curve()[0].validation_loss));
    CHECK(t.curve()[2].validation_loss == history[0].validation_loss);

    // The windows: n = 2977 validation tokens, T = 16, eval_tokens 256 → K = 16 windows at
    // s_k = ⌊k (n − 1 − T) / 15⌋.
    const auto& v = t.text().validation;
    const std::int64_t n = std::int64_t(v.size()), T = 16, K = 16;
    std::vector<std::int32_t> in, tg;
    for (std::int64_t k = 0; k < K; ++k) {
        const std::int64_t s = k * (n - 1 - T) / (K - 1);
        in.insert(in.end(), v.begin() + s, v.begin() + s + T);
        tg.insert(tg.end(), v.begin() + s + 1, v.begin() + s + 1 + T);
    }
    t.model().eval();
    NoGradGuard no_grad;
    const double manual = t.model().loss(from(in, {K, T}), from(tg, {K, T})).item();
    CHECK(t.evaluate() == Approx(manual).epsilon(1e-5));
}

TEST_CASE("text training resumes exactly: 10 + save + load + 10 steps = 20 steps, dropout included", "[text]") {
    TextTrainConfig c = tiny();
    c.dropout = 0.1;
    c.tokenizer = "bpe";
    c.vocab_size = 300;
    const std::string text = corpus();
    TextTrainer straight(c, text, "corpus");
    straight.run();
    c.max_steps = 20;
    TextTrainer first(c, text, "corpus");
    for (int i = 0; i < 10; ++i) first.step();
    const std::string path = temp_path("qkv_text_resume.safetensors");
    first.save(path);
    auto resumed = TextTrainer::load(path, text, "corpus");
    CHECK(resumed->steps_done() == 10);
    CHECK(resumed->tokenizer().serialize() == first.tokenizer().serialize());
    resumed->run();
    CHECK(resumed->steps_done() == 20);
    CHECK(flat_parameters(resumed->model()) == flat_parameters(straight.model()));
    // The text must be the one the run trained on.
    CHECK_THROWS_WITH(TextTrainer::load(path, text + "!", "other.txt"),
                      Contains("this run trained on a text of 29765 bytes (corpus), but other.txt has 29766 bytes"));
    std::filesystem::remove(path);
}

TEST_CASE("fine-tuning starts from the checkpoint's weights, shape and tokenizer, and trains on the new text", "[text]") {
    TextTrainConfig c = tiny();
    c.tokenizer = "bpe";
    c.vocab_size = 300;
    c.hidden = 40;  // not 4·dim: the shape must come from the checkpoint, MLP included
    const std::string text = corpus();
    TextTrainer base(c, text, "corpus");
    for (int i = 0; i < 5; ++i) base.step();
    const std::string path = temp_path("qkv_text_base.safetensors");
    base.save(path);

    TextTrainConfig other = tiny();  // other training settings; its shape fields are replaced
    other.layers = 3;
    other.dim = 8;
    other.lr = 5e-4;
    other.max_steps = 4;
    const std::string new_text = text.substr(text.size() / 2);
    auto tuned = TextTrainer::fine_tune(path, other, new_text, "half");
    CHECK(tuned->steps_done() == 0);
    CHECK(tuned->config().layers == c.layers);
    CHECK(tuned->config().dim == c.dim);
    CHECK(tuned->config().hidden == 40);
    CHECK(tuned->config().lr == 5e-4);
    CHECK(tuned->tokenizer().serialize() == base.tokenizer().serialize());  // not learned again
    CHECK(flat_parameters(tuned->model()) == flat_parameters(base.model()));  // the weights, bit for bit
    tuned->run();
    CHECK(tuned->steps_done() == 4);
    CHECK(flat_parameters(tuned->model()) != flat_parameters(base.model()));
    // Its checkpoint names where it started and resumes like any run.
    const std::string tuned_path = temp_path("qkv_text_tuned.safetensors");
    tuned->save(tuned_path);
    CHECK(io::load_safetensors(tuned_path).metadata.at("text.init") == path);
    CHECK(TextTrainer::load(tuned_path, new_text, "half")->config().hidden == 40);

    // A character model cannot read characters it never saw; a file without a tokenizer is refused.
    TextTrainConfig chars = tiny();
    TextTrainer char_base(chars, text, "corpus");
    char_base.save(path);
    CHECK_THROWS_WITH(TextTrainer::fine_tune(path, tiny(), text + "\u2603", "snow"), Contains("U+2603"));
    nn::GPT bare(nn::GPTConfig{});
    io::save_checkpoint(path, bare);
    CHECK_THROWS_WITH(TextTrainer::fine_tune(path, tiny(), text, "x"), Contains("has no tokenizer"));
    std::filesystem::remove(path);
    std::filesystem::remove(tuned_path);
}

TEST_CASE("text checkpoints carry their tokenizer: load_text_model rebuilds the model from the file alone", "[text]") {
    TextTrainConfig c = tiny();
    c.max_steps = 10;
    TextTrainer t(c, corpus(), "corpus");
    t.run();
    const std::string path = temp_path("qkv_text_model.safetensors");
    t.save(path);
    const TextModel m = load_text_model(path);
    CHECK(m.steps == 10);
    CHECK(m.tokenizer->serialize() == t.tokenizer().serialize());
    const auto ids = m.tokenizer->encode("The fox ");
    NoGradGuard no_grad;
    t.model().eval();
    const Tensor x = from(ids, {1, std::int64_t(ids.size())});
    CHECK(m.model->forward(x).to_vector<float>() == t.model().forward(x).to_vector<float>());
    const auto meta = io::load_safetensors(path).metadata;
    CHECK(is_text_checkpoint(meta));
    CHECK(meta.at("model.dim") == "16");
    CHECK(meta.at("text.source") == "corpus");

    // Forged or foreign files: each a clear error, before a model is built.
    auto rewrite = [&](const std::string& key, const std::string& value) {
        io::SafeTensors f = io::load_safetensors(path);
        if (value.empty()) f.metadata.erase(key);
        else f.metadata[key] = value;
        const std::string forged = temp_path("qkv_text_forged.safetensors");
        io::save_safetensors(forged, f.tensors, f.metadata);
        return forged;
    };
    CHECK_THROWS_WITH(load_text_model(rewrite("tokenizer", "")),
                      Contains("the checkpoint has no tokenizer (metadata 'tokenizer' is missing)"));
    CHECK_THROWS_WITH(load_text_model(rewrite("model.dim", "16384")),
                      Contains("the metadata describes a model of") && Contains("but the file holds"));
    CHECK_THROWS_WITH(load_text_model(rewrite("model.layers", "100000")), Contains("metadata 'model.layers' is 100000, outside [1, 256]"));
    CHECK_THROWS_WITH(load_text_model(rewrite("model.vocab", "61")), Contains("the model has 61 tokens, its tokenizer 60"));
    CHECK_THROWS_WITH(load_text_model(rewrite("tokenizer", "qkv-tokenizer 1\nkind char\nchars 99999999\n")),
                      Contains("metadata': line 3: 99999999 is outside"));
    CHECK_THROWS_WITH(load_text_model(rewrite("model.heads", "3")), Contains("heads (3) must divide dim (16)"));
    std::filesystem::remove(temp_path("qkv_text_forged.safetensors"));
    // A task model is not a text model.
    TaskTrainConfig tc;
    tc.task.name = "copy";
    tc.task.length = 4;
    tc.dim = 8;
    tc.heads = 2;
    tc.layers = 1;
    tc.eval_size = 10;
    const std::string task_path = temp_path("qkv_task_model.safetensors");
    TaskTrainer(tc).save(task_path);
    CHECK_THROWS_WITH(load_text_model(task_path), Contains("a model of the toy task 'copy', not a text model: it has no tokenizer"));
    std::filesystem::remove(task_path);
    std::filesystem::remove(path);
}

TEST_CASE("text generation: a fixed seed writes the same text on 1 and 2 threads, past the context too", "[text]") {
    TextTrainConfig c = tiny();
    c.max_steps = 20;
    TextTrainer t(c, corpus(), "corpus");
    t.run();
    t.model().eval();
    const auto ids = t.tokenizer().encode("The fox ");
    nn::SampleOptions o;
    o.greedy = false;
    o.temperature = 1.0;
    o.top_p = 0.9;
    auto write = [&](int threads) {
        set_num_threads(threads);
        Generator g(42);
        const Tensor out = t.model().generate(from(ids, {1, std::int64_t(ids.size())}), 60, o, g);  // 68 > context 16
        return t.tokenizer().decode(out.to_vector<std::int32_t>());
    };
    const int before = num_threads();
    const std::string one = write(1), two = write(2);
    set_num_threads(before);
    CHECK(one.size() == 68);
    CHECK(one == two);
}

TEST_CASE("text training is guarded like the tasks: checkpoints every N steps, a stop saves, the curve continues", "[text][run]") {
    TextTrainConfig c = tiny();
    c.dropout = 0.1;
    const std::string text = corpus();
    const test::TempDir dir("text_guard");
    const std::string path = dir / "run.safetensors";
    TextTrainer straight(c, text, "corpus");
    straight.run();
    TextTrainer t(c, text, "corpus");
    std::vector<std::int64_t> saved;
    RunGuard guard({path, 8, false}, [&](const std::string& p) {
        t.save(p);
        saved.push_back(t.steps_done());
    });
    guard.check_output();
    t.run({}, {}, &guard);
    CHECK(saved == std::vector<std::int64_t>{8, 16});
    CHECK(flat_parameters(t.model()) == flat_parameters(straight.model()));
    // Resumed from the checkpoint of step 16: the same bits as the run that never stopped, and the
    // curve holds the points of both segments.
    auto resumed = TextTrainer::load(path, text, "corpus");
    CHECK(resumed->steps_done() == 16);
    REQUIRE(resumed->curve().size() == 1);  // the point of step 10 (points come every 10 steps here)
    CHECK(resumed->curve()[0].train_loss == straight.curve()[0].train_loss);
    resumed->run();
    CHECK(flat_parameters(resumed->model()) == flat_parameters(straight.model()));
    REQUIRE(resumed->curve().size() == 2);
    CHECK(resumed->curve()[1].step == 20);
    CHECK(resumed->curve()[1].validation_loss == straight.curve()[1].validation_loss);
}

TEST_CASE("text training: a NaN stops it before the update, names the op and layer, and saves nothing over a good file", "[text][run][anomaly]") {
    TextTrainConfig c = tiny();
    const std::string text = corpus();
    const test::TempDir dir("text_nan");
    const std::string path = dir / "run.safetensors";
    TextTrainer t(c, text, "corpus");
    t.set_max_steps(4);
    t.run();
    t.save(path);
    const std::string good = test::read_bytes(path);
    t.set_max_steps(20);
    std::vector<NamedTensor> params = t.model().named_parameters();
    for (auto& [name, p] : params)
        if (name == "blocks.0.ln1.weight") p.data<float>()[3] = 1e38f;  // the attention after it overflows
    const auto before = flat_parameters(t.model());
    try {
        t.step();
        FAIL("the step went on");
    } catch (const TrainingDiverged& e) {
        CHECK(e.step() == 5);
        CHECK_THAT(std::string(e.what()), Contains("step 5: the loss is NaN; anomaly: the forward of") &&
                                              Contains("(in blocks.0.attn) produced NaN"));
    }
    CHECK(t.steps_done() == 4);
    CHECK(flat_parameters(t.model()) == before);  // not updated
    for (auto& [name, p] : params)
        if (name == "blocks.0.mlp.fc2.weight") p.data<float>()[7] = std::nanf("");
    CHECK_THROWS_WITH(t.save(path), Contains("refusing to save a state that is not finite") &&
                                        Contains("'blocks.0.mlp.fc2.weight' holds NaN at index 7"));
    CHECK(test::read_bytes(path) == good);
}
