/// \file
/// \brief GPT-2's files read into qkv's GPT and BPE tokenizer (see qkv/io/gpt2.hpp).
#include "qkv/io/gpt2.hpp"

#include <fmt/core.h>

#include <array>
#include <cstring>
#include <map>
#include <sstream>

#include "io_detail.hpp"
#include "qkv/io/file.hpp"
#include "qkv/data/tasks.hpp"  // decode_utf8
#include "qkv/ops/ops.hpp"

namespace qkv::io {

namespace {

using detail::JsonValue;
using Kind = detail::JsonValue::Kind;

// GPT-2's vocab.json is 1 MB and merges.txt 0.5 MB; a wrong path to a huge file is refused.
constexpr std::size_t kMaxFileBytes = std::size_t(256) << 20;

// ---- config.json ------------------------------------------------------------------------------------

const JsonValue* member(const JsonValue& object, std::string_view key) {
    for (const auto& [k, v] : object.members)
        if (k == key) return &v;
    return nullptr;
}

std::int64_t positive(const JsonValue& config, std::string_view key, const std::string& path, std::int64_t hi) {
    const JsonValue* v = member(config, key);
    if (!v) fail("'{}': no \"{}\"", path, key);
    if (v->kind != Kind::integer || v->number < 1 || v->number > std::uint64_t(hi))
        fail("'{}': \"{}\" must be an integer in [1, {}], got {}", path, key, hi,
             v->kind == Kind::integer ? std::to_string(v->number) : std::string(detail::json_kind_name(v->kind)));
    return std::int64_t(v->number);
}

// ---- the byte-to-character table ----------------------------------------------------------------------
// GPT-2 spells every byte as one printable character so that its vocabulary is readable text: the bytes
// that print as themselves in Latin-1 ('!'..'~', '¡'..'¬', '®'..'ÿ') stand for themselves, and the other
// 68 (controls, space, DEL, the C1 block, NBSP, soft hyphen) get the code points from U+0100 up, in byte
// order: byte 0 is 'Ā' (U+0100), the space (byte 32) is 'Ġ' (U+0120), newline (10) is 'Ċ' (U+010A).
std::array<char32_t, 256> byte_chars() {
    std::array<char32_t, 256> table{};
    char32_t next = 0x100;
    for (int b = 0; b < 256; ++b) {
        const bool prints = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        table[std::size_t(b)] = prints ? char32_t(b) : next++;
    }
    return table;
}

// A vocabulary entry's bytes, from its spelling. Throws naming the entry when a character is not in the table.
std::string spelled_bytes(const std::string& spelling, const std::string& path) {
    static const std::map<char32_t, unsigned char> byte_of = [] {
        std::map<char32_t, unsigned char> m;
        const auto table = byte_chars();
        for (int b = 0; b < 256; ++b) m[table[std::size_t(b)]] = static_cast<unsigned char>(b);
        return m;
    }();
    std::string bytes;
    for (const char32_t c : data::decode_utf8(spelling, path)) {
        const auto it = byte_of.find(c);
        if (it == byte_of.end())
            fail("'{}': token \"{}\" has the character U+{:04X}, which GPT-2's byte table does not use", path,
                 spelling.substr(0, 40), std::uint32_t(c));
        bytes += static_cast<char>(it->second);
    }
    return bytes;
}

bool is_mask_buffer(const std::string& name) {
    // h.N.attn.bias and h.N.attn.masked_bias (with or without "transformer."): causal masks saved as buffers.
    const auto ends_with = [&](std::string_view tail) {
        return name.size() >= tail.size() && name.compare(name.size() - tail.size(), tail.size(), tail) == 0;
    };
    const bool in_block = name.rfind("h.", 0) == 0 || name.rfind("transformer.h.", 0) == 0;
    return in_block && (ends_with(".attn.bias") || ends_with(".attn.masked_bias"));
}

}  // namespace

NameMap gpt2_names() {
    NameMap rules{
        {"wte.weight", "tok_emb.weight"},
        {"wpe.weight", "pos_emb.weight"},
        {"h.*.ln_1.*", "blocks.*.ln1.*"},
        {"h.*.attn.c_attn.*", "blocks.*.attn.qkv_proj.*"},
        {"h.*.attn.c_proj.*", "blocks.*.attn.out_proj.*"},
        {"h.*.ln_2.*", "blocks.*.ln2.*"},
        {"h.*.mlp.c_fc.*", "blocks.*.mlp.fc1.*"},
        {"h.*.mlp.c_proj.*", "blocks.*.mlp.fc2.*"},
        {"ln_f.*", "ln_f.*"},
    };
    const std::size_t n = rules.size();
    for (std::size_t i = 0; i < n; ++i) rules.push_back({"transformer." + rules[i].from, rules[i].to});
    return rules;
}

nn::GPTConfig read_gpt2_config(const std::string& path) {
    const JsonValue config = detail::parse_json(read_file(path, "GPT-2 config", kMaxFileBytes), fmt::format("'{}'", path), true);
    if (config.kind != Kind::object) fail("'{}': expected a JSON object", path);
    nn::GPTConfig g;
    g.vocab = positive(config, "vocab_size", path, data::kMaxBpeVocab);
    g.block_size = positive(config, member(config, "n_positions") ? "n_positions" : "n_ctx", path, 1 << 20);
    g.dim = positive(config, "n_embd", path, 1 << 16);
    g.layers = positive(config, "n_layer", path, 1024);
    g.heads = positive(config, "n_head", path, 1024);
    if (g.dim % g.heads != 0) fail("'{}': n_head {} does not divide n_embd {}", path, g.heads, g.dim);
    g.hidden = 4 * g.dim;
    if (const JsonValue* inner = member(config, "n_inner"); inner && inner->kind != Kind::literal)
        g.hidden = positive(config, "n_inner", path, 1 << 20);
    g.ln_eps = 1e-5;
    if (const JsonValue* eps = member(config, "layer_norm_epsilon")) {
        double v = 0;
        const std::string text = eps->kind == Kind::integer ? std::to_string(eps->number) : eps->text;
        if ((eps->kind != Kind::number && eps->kind != Kind::integer) || parse_double_prefix(text, v) != text.size() ||
            !(v > 0 && v < 1))
            fail("'{}': \"layer_norm_epsilon\" must be a number in (0, 1), got {}", path, text.substr(0, 40));
        g.ln_eps = v;
    }
    g.tanh_gelu = true;
    if (const JsonValue* act = member(config, "activation_function")) {
        if (act->kind != Kind::string) fail("'{}': \"activation_function\" must be a string", path);
        if (act->text == "gelu") g.tanh_gelu = false;  // the exact, erf form
        else if (act->text != "gelu_new" && act->text != "gelu_pytorch_tanh")
            fail("'{}': activation_function \"{}\" is not one qkv has (gelu_new or gelu_pytorch_tanh: tanh GELU; "
                 "gelu: exact)",
                 path, act->text.substr(0, 40));
    }
    if (const JsonValue* tie = member(config, "tie_word_embeddings"); tie && !(tie->kind == Kind::literal && tie->text == "true"))
        fail("'{}': tie_word_embeddings must be true: GPT-2's head is its token embedding", path);
    g.tie_weights = true;
    g.seed = 0;
    return g;
}

SafeTensors gpt2_to_qkv(const SafeTensors& file, const std::string& source, const nn::GPTConfig& g) {
    const NameMap map = gpt2_names();
    const std::int64_t C = g.dim, hidden = g.hidden > 0 ? g.hidden : 4 * g.dim;
    SafeTensors out;
    out.metadata = file.metadata;
    const Tensor* wte = nullptr;
    const Tensor* head = nullptr;
    for (const auto& [name, t] : file.tensors) {
        if (name == "wte.weight" || name == "transformer.wte.weight") wte = &t;
        if (name == "lm_head.weight") head = &t;
    }
    for (const auto& [name, t] : file.tensors) {
        if (is_mask_buffer(name)) continue;
        if (&t == head) {
            // Tied: the head is the token embedding saved twice. Anything else is another model.
            // The same bytes, compared in place (not through two 150 MB copies as doubles).
            const bool same = wte && t.dtype() == wte->dtype() && t.shape() == wte->shape() &&
                              std::memcmp(t.raw_data(), wte->raw_data(), std::size_t(t.numel()) * dtype_size(t.dtype())) == 0;
            if (!same)
                fail("'{}': lm_head.weight differs from wte.weight: the head is not tied, as GPT-2's is", source);
            continue;
        }
        const std::string to = map_name(map, name);
        // Conv1D weights are (in, out): check, then transpose to a Linear's (out, in).
        std::int64_t in_dim = 0, out_dim = 0;
        const auto ends = [&](std::string_view tail) {
            return to.size() > tail.size() && to.compare(to.size() - tail.size(), tail.size(), tail) == 0;
        };
        if (ends(".attn.qkv_proj.weight")) in_dim = C, out_dim = 3 * C;
        else if (ends(".attn.out_proj.weight")) in_dim = C, out_dim = C;
        else if (ends(".mlp.fc1.weight")) in_dim = C, out_dim = hidden;
        else if (ends(".mlp.fc2.weight")) in_dim = hidden, out_dim = C;
        if (in_dim == 0) {
            out.tensors.emplace_back(to, t);
            continue;
        }
        if (t.shape() != Shape{in_dim, out_dim})
            fail("'{}': '{}' is {}, but a Conv1D of this configuration is (in, out) = ({}, {})", source, name,
                 shape_str(t.shape()), in_dim, out_dim);
        out.tensors.emplace_back(to, transpose(t, 0, 1).clone());
    }
    return out;
}

data::BpeTokenizer read_gpt2_tokenizer(const std::string& vocab_json, const std::string& merges_txt) {
    const JsonValue vocab = detail::parse_json(read_file(vocab_json, "GPT-2 vocabulary", kMaxFileBytes), fmt::format("'{}'", vocab_json), true);
    if (vocab.kind != Kind::object) fail("'{}': expected a JSON object of token -> id", vocab_json);
    if (std::int64_t(vocab.members.size()) > data::kMaxBpeVocab)
        fail("'{}': {} tokens, more than the limit of {}", vocab_json, vocab.members.size(), data::kMaxBpeVocab);
    std::map<std::string, std::int32_t> id_of;  // a token's bytes → its GPT-2 id
    std::int32_t end_of_text = -1;
    for (const auto& [spelling, id] : vocab.members) {
        if (id.kind != Kind::integer || id.number >= vocab.members.size())
            fail("'{}': the id of \"{}\" must be an integer below {} (the number of tokens)", vocab_json,
                 spelling.substr(0, 40), vocab.members.size());
        if (spelling == data::kEndOfText) {
            end_of_text = std::int32_t(id.number);
            continue;
        }
        if (!id_of.emplace(spelled_bytes(spelling, vocab_json), std::int32_t(id.number)).second)
            fail("'{}': \"{}\" spells the same bytes as another token", vocab_json, spelling.substr(0, 40));
    }
    if (end_of_text < 0) fail("'{}': no {} token", vocab_json, data::kEndOfText);

    // The layout qkv's BpeTokenizer numbers: bytes 0-255, then merge i as 256 + i, then end of text.
    std::map<std::string, std::int32_t> layout;  // bytes → layout id, for the tokens made so far
    std::vector<std::int32_t> ids;               // layout id → GPT-2 id
    const auto table = byte_chars();
    for (int b = 0; b < 256; ++b) {
        const std::string bytes(1, static_cast<char>(b));
        const auto it = id_of.find(bytes);
        if (it == id_of.end())
            fail("'{}': no token for byte {} (spelled U+{:04X})", vocab_json, b, std::uint32_t(table[std::size_t(b)]));
        layout[bytes] = b;
        ids.push_back(it->second);
    }
    std::vector<data::BpeMerge> merges;
    std::istringstream lines(read_file(merges_txt, "GPT-2 merges", kMaxFileBytes));
    std::string line;
    for (std::int64_t line_no = 1; std::getline(lines, line); ++line_no) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
        const std::size_t sp = line.find(' ');
        if (sp == std::string::npos || sp == 0 || sp + 1 == line.size() || line.find(' ', sp + 1) != std::string::npos)
            fail("'{}': line {}: expected two tokens separated by one space, got \"{}\"", merges_txt, line_no,
                 line.substr(0, 40));
        const std::string left = spelled_bytes(line.substr(0, sp), merges_txt);
        const std::string right = spelled_bytes(line.substr(sp + 1), merges_txt);
        const auto l = layout.find(left), r = layout.find(right);
        if (l == layout.end() || r == layout.end())
            fail("'{}': line {}: \"{}\" joins a token that neither a byte nor an earlier merge makes", merges_txt,
                 line_no, line.substr(0, 40));
        const auto made = id_of.find(left + right);
        if (made == id_of.end())
            fail("'{}': line {}: \"{}\" makes a token that '{}' does not have", merges_txt, line_no, line.substr(0, 40),
                 vocab_json);
        if (!layout.emplace(left + right, std::int32_t(256 + merges.size())).second)
            fail("'{}': line {}: \"{}\" makes a token an earlier merge already made", merges_txt, line_no,
                 line.substr(0, 40));
        merges.push_back({l->second, r->second});
        ids.push_back(made->second);
    }
    ids.push_back(end_of_text);
    if (ids.size() != vocab.members.size())
        fail("'{}' has {} tokens, but the 256 bytes, the {} merges of '{}' and {} make {}: some tokens are "
             "neither",
             vocab_json, vocab.members.size(), merges.size(), merges_txt, data::kEndOfText, ids.size());
    return data::BpeTokenizer(std::move(merges), data::PreSplit::gpt2, std::move(ids));
}

}  // namespace qkv::io
