// Parity with PyTorch (issue 15): qkv's GPT against the reference files that
// tests/pytorch/make_parity.py wrote with PyTorch 1.13 (tests/parity/*.safetensors, committed, so
// these tests need no PyTorch). Each file holds a model's weights under PyTorch's names, a batch,
// and PyTorch's logits, loss, gradients, attention weights and parameters after one AdamW step.
//
// Every comparison is max |qkv − torch| / max |torch| over a whole tensor (relative to the tensor's
// largest value: an element near zero has no meaningful relative error of its own). Tolerances:
// f64 1e-10 for everything; f32 1e-5 for logits, loss, gradients and attention, 1e-6 for the
// parameters after the AdamW step — with one rule for the elements the step cannot fix, below.
//
// The AdamW rule. After one step from zero state, Adam moves each element by
//     u(g) = lr · g / (|g| + eps)        (m̂ = g and √v̂ = |g| after bias correction)
// which is ±lr for |g| ≫ eps but turns steeply between −lr and lr where |g| is about eps (1e-8):
// |du/dg| = lr·eps / (|g| + eps)². An error δg in the gradient — and the f32 gradients of any two
// implementations differ by round-off — moves such an element's update by up to
//     bound(g) = lr · eps · δg / (max(|g| − δg, 0) + eps)²,   at most 2·lr,
// however exact the step itself is. So each element is held to the tolerance plus that bound, with
// δg the measured max |g_qkv − g_torch| of its tensor (this file's own gradient check). For the
// elements whose |g| ≫ eps the bound is far below the tolerance and changes nothing; the test
// counts the elements where it is not, and requires them to be few.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <string>

#include "qkv/qkv.hpp"
#include "qkv/train/import.hpp"
#include "support.hpp"

using namespace qkv;

namespace {

const std::string kDir = std::string(QKV_SOURCE_DIR) + "/tests/parity/";

const Tensor& find(const io::SafeTensors& file, const std::string& name) {
    for (const auto& [n, t] : file.tensors)
        if (n == name) return t;
    FAIL("the reference file has no tensor '" << name << "'");
    throw std::logic_error("unreachable");
}

// max |a − b| / max |b| (0 when b is all zeros and a equals it).
double rel_err(const Tensor& a, const Tensor& b) {
    REQUIRE(a.shape() == b.shape());
    const auto x = a.to_vector<double>(), y = b.to_vector<double>();
    double diff = 0, scale = 0;
    for (std::size_t i = 0; i < x.size(); ++i) {
        diff = std::max(diff, std::abs(x[i] - y[i]));
        scale = std::max(scale, std::abs(y[i]));
    }
    return scale > 0 ? diff / scale : diff;
}

struct Reference {
    io::SafeTensors file;
    nn::GPTConfig config;
    DType dtype = f32;
    std::string path;
};

Reference open(const std::string& name) {
    Reference r;
    r.path = name.find('/') == std::string::npos ? kDir + name : name;
    r.file = io::load_safetensors(r.path);
    const auto meta = [&](const char* key) { return std::stoll(r.file.metadata.at(key)); };
    r.config.vocab = meta("model.vocab");
    r.config.block_size = meta("model.block_size");
    r.config.dim = meta("model.dim");
    r.config.heads = meta("model.heads");
    r.config.layers = meta("model.layers");
    r.config.hidden = meta("model.hidden");
    r.config.seed = 12345;  // a different initialisation: everything must come from the file
    r.dtype = find(r.file, "tok.weight").dtype();
    return r;
}

void check_file(const std::string& name, double tol, double step_tol) {
    CAPTURE(name);
    const Reference ref = open(name);
    nn::GPT model(ref.config);
    model.to(ref.dtype);
    // Loaded the way a user's PyTorch file is: through the name map, non-strict because the file
    // also holds the references (ref.*) — which must be all that is left over.
    const io::LoadReport report =
        io::load_state_dict(ref.file, ref.path, model, io::pytorch_gpt_names(), /*strict=*/false);
    REQUIRE(report.missing.empty());
    REQUIRE(report.loaded.size() == model.named_parameters().size());
    for (const auto& u : report.unexpected) REQUIRE(u.rfind("ref.", 0) == 0);

    const Tensor ids = find(ref.file, "ref.ids"), targets = find(ref.file, "ref.targets");
    REQUIRE(ids.dtype() == i32);  // I64 in the file, narrowed (and range-checked) on reading

    // Forward: logits and attention weights.
    const Tensor logits = model(ids);
    // The worst error of each kind, printed when QKV_PARITY_REPORT is set (how close, not just "within").
    std::map<std::string, double> worst;
    const auto note = [&](const std::string& kind, double err) {
        worst[kind] = std::max(worst[kind], err);
        return err;
    };
    CHECK(note("logits", rel_err(logits, find(ref.file, "ref.logits"))) <= tol);
    for (std::size_t l = 0; l < model.blocks().size(); ++l) {
        const Tensor& w = model.blocks()[l]->attn.last_weights();
        REQUIRE(w.defined());
        CAPTURE(l);
        CHECK(note("attention", rel_err(w, find(ref.file, "ref.attn." + std::to_string(l)))) <= tol);
    }

    // Loss and every gradient.
    const Tensor loss = model.loss(ids, targets);
    CHECK(note("loss", rel_err(loss, find(ref.file, "ref.loss"))) <= tol);
    loss.backward();
    for (const auto& [pname, p] : model.named_parameters()) {
        const std::string torch_name = io::map_name(io::reversed(io::pytorch_gpt_names()), pname);
        CAPTURE(torch_name);
        const Tensor& g_ref = find(ref.file, "ref.grad." + torch_name);
        REQUIRE(p.grad().defined());
        CHECK(note("gradients", rel_err(p.grad(), g_ref)) <= tol);
    }

    // One AdamW step, with the file's hyper-parameters.
    const auto& m = ref.file.metadata;
    optim::AdamWOptions o;
    o.lr = std::stod(m.at("adamw.lr"));
    o.beta1 = std::stod(m.at("adamw.beta1"));
    o.beta2 = std::stod(m.at("adamw.beta2"));
    o.eps = std::stod(m.at("adamw.eps"));
    o.weight_decay = std::stod(m.at("adamw.weight_decay"));
    std::map<std::string, Tensor> grads;
    for (const auto& [pname, p] : model.named_parameters()) grads[pname] = p.grad().clone();
    optim::AdamW opt(model.named_parameters(), o);
    opt.step();
    std::int64_t sensitive = 0, total = 0;
    for (const auto& [pname, p] : model.named_parameters()) {
        const std::string torch_name = io::map_name(io::reversed(io::pytorch_gpt_names()), pname);
        CAPTURE(torch_name);
        const auto after = p.to_vector<double>();
        const auto want = find(ref.file, "ref.adamw." + torch_name).to_vector<double>();
        const auto g = find(ref.file, "ref.grad." + torch_name).to_vector<double>();
        const auto g_qkv = grads.at(pname).to_vector<double>();
        double scale = 0;
        for (double w : want) scale = std::max(scale, std::abs(w));
        const double allowed = step_tol * scale;
        for (std::size_t i = 0; i < after.size(); ++i) {
            const double dg = std::abs(g_qkv[i] - g[i]);
            const double near = std::max(std::abs(g[i]) - dg, 0.0) + o.eps;
            const double bound = std::min(o.lr * o.eps * dg / (near * near), 2 * o.lr);
            if (bound > allowed) ++sensitive;
            else note("adamw", std::abs(after[i] - want[i]) / scale);
            ++total;
            if (std::abs(after[i] - want[i]) > allowed + bound) {
                CAPTURE(i, after[i], want[i], g[i], dg, bound, allowed);
                FAIL("parameter after the AdamW step differs from PyTorch's beyond the rule");
            }
        }
    }
    CAPTURE(sensitive, total);
    CHECK(sensitive * 100 <= total);  // the rule exempts (part of) at most 1% of the elements
    if (std::getenv("QKV_PARITY_REPORT"))
        std::printf("%s: logits %.2g, loss %.2g, gradients %.2g, attention %.2g, AdamW step %.2g (%lld of %lld elements "
                    "under the eps rule)\n",
                    ref.path.substr(ref.path.rfind('/') + 1).c_str(), worst["logits"], worst["loss"], worst["gradients"],
                    worst["attention"], worst["adamw"], static_cast<long long>(sensitive), static_cast<long long>(total));
}

}  // namespace

// The committed references, and (to check files qkv has never seen) every gpt_*_f32/f64.safetensors in
// the directory QKV_PARITY_DIR names, e.g. one tests/pytorch/make_parity.py wrote with --seed or --config.
static std::vector<std::string> references(const std::string& dtype) {
    std::vector<std::string> paths{kDir + "gpt_small_" + dtype + ".safetensors", kDir + "gpt_odd_" + dtype + ".safetensors"};
    if (const char* more = std::getenv("QKV_PARITY_DIR"); more && *more) {
        std::vector<std::string> found;
        for (const auto& e : std::filesystem::directory_iterator(more)) {
            const std::string f = e.path().filename().string();
            if (f.rfind("gpt_", 0) == 0 && f.size() > 17 && f.substr(f.size() - 16) == "_" + dtype + ".safetensors")
                found.push_back(e.path().string());
        }
        std::sort(found.begin(), found.end());
        REQUIRE_FALSE(found.empty());  // a directory was named: it must hold references
        paths.insert(paths.end(), found.begin(), found.end());
    }
    return paths;
}

TEST_CASE("PyTorch parity, f64: logits, loss, gradients, attention and an AdamW step to 1e-10", "[parity]") {
    for (const auto& path : references("f64")) check_file(path, 1e-10, 1e-10);
}

TEST_CASE("PyTorch parity, f32: logits, loss, gradients and attention to 1e-5, the AdamW step to 1e-6", "[parity]") {
    for (const auto& path : references("f32")) check_file(path, 1e-5, 1e-6);
}

TEST_CASE("PyTorch parity: the test sees a wrong weight (a transposed matrix fails it)", "[parity]") {
    // The comparison must be able to fail: load the f64 reference, then transpose one square
    // weight (attn.proj, C × C) in place — shapes still fit — and require a logits mismatch.
    const Reference ref = open("gpt_small_f64.safetensors");
    nn::GPT model(ref.config);
    model.to(f64);
    io::load_state_dict(ref.file, ref.path, model, io::pytorch_gpt_names(), false);
    for (auto& [pname, p] : model.named_parameters())
        if (pname == "blocks.0.attn.out_proj.weight") {
            const Tensor t = p.clone();
            const std::int64_t C = t.size(0);
            for (std::int64_t i = 0; i < C; ++i)
                for (std::int64_t j = 0; j < C; ++j) p.set({i, j}, t.at({j, i}));
        }
    CHECK(rel_err(model(find(ref.file, "ref.ids")), find(ref.file, "ref.logits")) > 1e-3);
}

// ---- the importer (train/import.hpp) ----------------------------------------------------------------

TEST_CASE("infer_gpt_config reads the configuration from the shapes and checks the metadata against them", "[bridge]") {
    const Reference ref = open("gpt_odd_f32.safetensors");
    const nn::GPTConfig g = infer_gpt_config(ref.file, ref.path, io::pytorch_gpt_names());
    CHECK(g.vocab == 7);
    CHECK(g.block_size == 12);
    CHECK(g.dim == 12);
    CHECK(g.heads == 3);
    CHECK(g.layers == 1);
    CHECK(g.hidden == 20);
    CHECK(infer_gpt_config(ref.file, ref.path, io::pytorch_gpt_names(), 6).heads == 6);  // --heads wins

    io::SafeTensors lying = ref.file;
    lying.metadata["model.dim"] = "17";
    CHECK_THROWS_WITH(infer_gpt_config(lying, "x.safetensors", io::pytorch_gpt_names()),
                      "'x.safetensors': metadata 'model.dim' says 17, but the tensors have dim (columns of the token "
                      "embedding) = 12");
    io::SafeTensors headless = ref.file;
    headless.metadata.erase("model.heads");
    CHECK_THROWS_WITH(infer_gpt_config(headless, "x.safetensors", io::pytorch_gpt_names()),
                      Catch::Contains("the number of heads is not in the file's metadata") &&
                          Catch::Contains("give it (--heads H)"));
    // Under qkv's own names (no map), a PyTorch file has no 'tok_emb.weight'.
    CHECK_THROWS_WITH(infer_gpt_config(ref.file, "x.safetensors", {}),
                      Catch::Contains("no tensor maps to 'tok_emb.weight'"));
}

TEST_CASE("A text model exported for PyTorch and imported back is the same model, tokenizer included", "[bridge]") {
    qkv::test::TempDir dir("bridge");
    const std::string text = "the cat sat on the mat. the dog sat on the log.";
    const data::CharTokenizer tok = data::CharTokenizer::train(text);
    nn::GPTConfig g;
    g.vocab = tok.vocab_size();
    g.block_size = 16;
    g.dim = 16;
    g.heads = 2;
    g.layers = 1;
    g.seed = 4;
    nn::GPT model(g);
    model.eval();
    io::save_checkpoint(dir / "text.safetensors", model, nullptr, nullptr, text_metadata(g, tok));
    io::export_weights(dir / "text.safetensors", dir / "pt.safetensors", io::reversed(io::pytorch_gpt_names()));
    const ImportResult r = import_gpt(dir / "pt.safetensors", dir / "back.safetensors");
    CHECK(r.has_tokenizer);
    CHECK(r.report.loaded.size() == model.named_parameters().size());
    CHECK(r.report.missing.empty());
    CHECK(r.report.unexpected.empty());

    const TextModel back = load_text_model(dir / "back.safetensors");  // what `qkv sample` opens
    CHECK(back.tokenizer->serialize() == tok.serialize());
    const Tensor ids = from(tok.encode("the dog sat"), {1, 11});
    const NoGradGuard no_grad;
    CHECK(rel_err(back.model->forward(ids), model(ids)) == 0);  // the same floats, bit for bit
}

// ---- GPT-2's layout (io/gpt2.hpp): a small random model PyTorch saved as a GPT-2 directory -----------

namespace {
const std::string kGpt2Dir = kDir + "gpt2";
}  // namespace

TEST_CASE("GPT-2 layout: qkv reads PyTorch's GPT-2 files and gives its tokens, logits and greedy continuation", "[gpt2]") {
    const TextModel m = load_gpt2(kGpt2Dir);
    const nn::GPTConfig& g = m.model->config();
    CHECK(g.tie_weights);
    CHECK(g.tanh_gelu);
    CHECK(g.ln_eps == 1e-5);
    CHECK(g.block_size == 16);
    const io::SafeTensors ref = io::load_safetensors(kGpt2Dir + "/reference.safetensors");
    const std::string prompt = ref.metadata.at("prompt");
    const std::int64_t steps = std::stoll(ref.metadata.at("steps"));

    // The tokenizer: GPT-2's ids (bytes renumbered), and the exact bytes back.
    const std::vector<std::int32_t> ids = m.tokenizer->encode(prompt);
    CHECK(ids == find(ref, "ref.prompt_ids").to_vector<std::int32_t>());
    CHECK(m.tokenizer->decode(ids) == prompt);
    const std::string odd = "caf\xC3\xA9 \xF0\x9F\x99\x82 \xFF\x00 12345";  // bytes the training text never had
    CHECK(m.tokenizer->decode(m.tokenizer->encode(odd)) == odd);

    const Tensor x = from(ids, {1, std::int64_t(ids.size())});
    const NoGradGuard no_grad;
    CHECK(rel_err(m.model->forward(x), find(ref, "ref.logits")) <= 1e-5);

    // Greedy, with and without the key/value cache; 13 + 12 tokens run past the context of 16.
    Generator gen(0);
    const std::vector<std::int32_t> want = find(ref, "ref.generated").to_vector<std::int32_t>();
    for (const bool cache : {true, false}) {
        CAPTURE(cache);
        const auto all = m.model->generate(x, steps, nn::SampleOptions{}, gen, cache).to_vector<std::int32_t>();
        CHECK(std::vector<std::int32_t>(all.end() - steps, all.end()) == want);
    }
}

TEST_CASE("GPT-2 layout: imported as a checkpoint it samples the same, and bad files get errors naming them", "[gpt2]") {
    qkv::test::TempDir dir("gpt2");
    const ImportResult r = import_gpt2(kGpt2Dir, dir / "gpt2.safetensors");
    CHECK(r.report.missing.empty());
    CHECK(r.report.unexpected.empty());  // mask buffers dropped, head tied
    const TextModel direct = load_gpt2(kGpt2Dir), saved = load_text_model(dir / "gpt2.safetensors");
    CHECK(saved.model->config().tie_weights);
    CHECK(saved.model->config().tanh_gelu);
    CHECK(saved.tokenizer->serialize() == direct.tokenizer->serialize());  // GPT-2's ids survive the trip
    const std::vector<std::int32_t> few = direct.tokenizer->encode("the cat sat");
    const Tensor x = from(few, {1, std::int64_t(few.size())});
    {
        const NoGradGuard no_grad;
        CHECK(rel_err(saved.model->forward(x), direct.model->forward(x)) == 0);
    }

    // Copies of the directory with one thing wrong.
    const auto copy_with = [&](const std::string& name, const std::string& file, const std::string& content) {
        const std::string d = dir / name;
        std::filesystem::create_directories(d);
        for (const char* f : {"config.json", "model.safetensors", "vocab.json", "merges.txt"})
            std::filesystem::copy_file(kGpt2Dir + "/" + f, d + "/" + f);
        qkv::test::write_bytes(d + "/" + file, content);
        return d;
    };
    std::string config = qkv::test::read_bytes(kGpt2Dir + "/config.json");
    const auto replace = [](std::string s, const std::string& from, const std::string& to) {
        s.replace(s.find(from), from.size(), to);
        return s;
    };
    CHECK_THROWS_WITH(load_gpt2(copy_with("wide", "config.json", replace(config, "\"n_embd\": 24", "\"n_embd\": 48"))),
                      Catch::Contains("h.0.attn.c_attn.weight' is (24,72), but a Conv1D of this configuration is (in, "
                                      "out) = (48, 144)"));
    CHECK_THROWS_WITH(load_gpt2(copy_with("relu", "config.json", replace(config, "gelu_new", "relu"))),
                      Catch::Contains("activation_function \"relu\" is not one qkv has"));
    CHECK_THROWS_WITH(load_gpt2(copy_with("vocab", "config.json", replace(config, "\"vocab_size\": 308", "\"vocab_size\": 309"))),
                      Catch::Contains("vocab_size is 309, but vocab.json has 308 tokens"));
    const std::string merges = qkv::test::read_bytes(kGpt2Dir + "/merges.txt");
    CHECK_THROWS_WITH(load_gpt2(copy_with("merges", "merges.txt", merges + "z z\n")),
                      Catch::Contains("line 53: \"z z\" makes a token that") && Catch::Contains("vocab.json' does not have"));
    CHECK_THROWS_WITH(load_gpt2(copy_with("joins", "merges.txt", merges + "zz q\n")),
                      Catch::Contains("line 53: \"zz q\" joins a token that neither a byte nor an earlier merge makes"));
    const std::string weights = qkv::test::read_bytes(kGpt2Dir + "/model.safetensors");
    CHECK_THROWS_WITH(load_gpt2(copy_with("cut", "model.safetensors", weights.substr(0, weights.size() / 2))),
                      Catch::Contains("model.safetensors"));
    CHECK_THROWS_WITH(load_gpt2(dir / "nowhere"), Catch::Contains("cannot open") && Catch::Contains("config.json"));
}

TEST_CASE("GPT-2's real files, when QKV_GPT2_DIR names a directory of them", "[gpt2]") {
    const char* real = std::getenv("QKV_GPT2_DIR");
    if (!real || !*real) {
        std::puts("SKIPPED: set QKV_GPT2_DIR to a directory with GPT-2's config.json, model.safetensors, vocab.json "
                  "and merges.txt to run this test");
        return;
    }
    const TextModel m = load_gpt2(real);
    // Published facts about GPT-2's tokenizer: "Hello world" is [15496, 995], <|endoftext|> is 50256.
    CHECK(m.tokenizer->encode("Hello world") == std::vector<std::int32_t>{15496, 995});
    CHECK(m.tokenizer->end_of_text() == 50256);
    CHECK(m.model->config().vocab == 50257);
    Generator gen(0);
    const NoGradGuard no_grad;
    const std::vector<std::int32_t> prompt = m.tokenizer->encode("The capital of France is");
    const auto out = m.model->generate(from(prompt, {1, std::int64_t(prompt.size())}), 5, nn::SampleOptions{}, gen, true);
    std::printf("GPT-2 continues 'The capital of France is' with '%s'\n",
                m.tokenizer->decode(out.to_vector<std::int32_t>()).c_str());
}
