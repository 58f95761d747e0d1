/// \file
/// \brief A strict JSON reader and a string writer: exactly what a safetensors header needs.
///
/// A reader learns here how to parse untrusted text safely. Every byte is read through one
/// function that checks the position against the end, so no input can make the parser read out of
/// bounds; recursion is capped, so no input can overflow the stack; and anything outside the small
/// subset a header uses is an error with a byte position, never a guess.
#include <cstring>
#include <set>

#include "io_detail.hpp"
#include "qkv/error.hpp"

namespace qkv::io::detail {

const char* json_kind_name(JsonValue::Kind kind) {
    switch (kind) {
        case JsonValue::Kind::object: return "an object";
        case JsonValue::Kind::array: return "an array";
        case JsonValue::Kind::string: return "a string";
        case JsonValue::Kind::integer: return "an integer";
        case JsonValue::Kind::number: return "a number";
        case JsonValue::Kind::literal: return "true, false or null";
    }
    return "?";
}

namespace {

constexpr int kMaxDepth = 16;  // a header needs 3 levels: {name: {shape: [..]}}

class Parser {
public:
    Parser(std::string_view text, std::string_view context, bool any_json)
        : s_(text), context_(context), any_(any_json) {}

    JsonValue document() {
        JsonValue v = value(0);
        skip_ws();
        if (pos_ != s_.size()) error("unexpected character after the end of the JSON value");
        return v;
    }

private:
    std::string_view s_;
    std::string_view context_;
    bool any_ = false;  // all of JSON (config files), or only what a safetensors header holds
    std::size_t pos_ = 0;

    [[noreturn]] void error(std::string_view what) const {
        fail("{}: malformed JSON{}: {} at byte {}", context_, any_ ? "" : " header", what, pos_);
    }
    JsonValue make(JsonValue::Kind kind) const {
        JsonValue v;
        v.kind = kind;
        v.offset = pos_;
        return v;
    }
    bool at_end() const { return pos_ >= s_.size(); }
    // The only way bytes are read: the bounds check lives here.
    unsigned char peek() const {
        if (at_end()) error("unexpected end of header");
        return static_cast<unsigned char>(s_[pos_]);
    }
    unsigned char next() {
        const unsigned char c = peek();
        ++pos_;
        return c;
    }
    void expect(char c) {
        if (peek() != static_cast<unsigned char>(c)) error(fmt::format("expected '{}'", c));
        ++pos_;
    }
    void skip_ws() {
        while (!at_end() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
    }

    JsonValue value(int depth) {
        if (depth > kMaxDepth) error("nested too deeply");
        skip_ws();
        const unsigned char c = peek();
        if (c == '{') return object(depth);
        if (c == '[') return array(depth);
        if (c == '"') {
            JsonValue v = make(JsonValue::Kind::string);
            v.text = string();
            return v;
        }
        if (c >= '0' && c <= '9') {
            if (!any_) return integer();
            // A plain non-negative integer stays an integer; anything else (sign, fraction, exponent)
            // is a number kept as its text, checked against JSON's grammar here.
            const std::size_t start = pos_;
            JsonValue v = integer_or_number();
            if (v.kind == JsonValue::Kind::number) v.text = std::string(s_.substr(start, pos_ - start));
            return v;
        }
        if (any_ && c == '-') {
            const std::size_t start = pos_++;
            if (at_end() || s_[pos_] < '0' || s_[pos_] > '9') error("expected a digit after '-'");
            JsonValue v = integer_or_number();
            v.kind = JsonValue::Kind::number;
            v.offset = start;
            v.text = std::string(s_.substr(start, pos_ - start));
            return v;
        }
        if (any_)
            for (const std::string_view word : {"true", "false", "null"})
                if (s_.substr(pos_, word.size()) == word) {
                    JsonValue v = make(JsonValue::Kind::literal);
                    v.text = std::string(word);
                    pos_ += word.size();
                    return v;
                }
        error(any_ ? "expected a JSON value" : "expected an object, array, string or non-negative integer");
    }

    // Digits, then optionally a fraction and an exponent (JSON's grammar): an integer when there
    // are neither and it fits in 64 bits, else a number (the caller keeps its text).
    JsonValue integer_or_number() {
        const std::size_t start = pos_;
        if (peek() == '0' && pos_ + 1 < s_.size() && s_[pos_ + 1] >= '0' && s_[pos_ + 1] <= '9')
            error("leading zero in a number");
        const auto digits = [&] {
            if (at_end() || s_[pos_] < '0' || s_[pos_] > '9') error("expected a digit");
            while (!at_end() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
        };
        digits();
        bool plain = pos_ - start <= 19;  // fits in 64 bits for sure
        if (!at_end() && s_[pos_] == '.') {
            ++pos_;
            digits();
            plain = false;
        }
        if (!at_end() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
            ++pos_;
            if (!at_end() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
            digits();
            plain = false;
        }
        if (plain) {
            const std::size_t end = pos_;
            pos_ = start;
            JsonValue v = integer();
            pos_ = end;
            return v;
        }
        JsonValue v = make(JsonValue::Kind::number);
        v.offset = start;
        return v;
    }

    JsonValue object(int depth) {
        JsonValue v = make(JsonValue::Kind::object);
        expect('{');
        skip_ws();
        if (peek() == '}') {
            ++pos_;
            return v;
        }
        // Keys seen so far, to refuse duplicates. An ordered set, not a scan of the members (O(n²):
        // 40 000 keys took 5 s, and the 100 MB header limit allows millions) and not a hash set
        // (crafted keys that collide would make it quadratic again): O(n log n) for any input.
        std::set<std::string> seen;
        for (;;) {
            skip_ws();
            if (peek() != '"') error("expected a string key");
            std::string key = string();
            if (!seen.insert(key).second) error(fmt::format("duplicate key \"{}\"", key));
            skip_ws();
            expect(':');
            v.members.push_back(JsonMember{std::move(key), value(depth + 1)});
            skip_ws();
            if (next() == '}') return v;
            --pos_;
            expect(',');
        }
    }

    JsonValue array(int depth) {
        JsonValue v = make(JsonValue::Kind::array);
        expect('[');
        skip_ws();
        if (peek() == ']') {
            ++pos_;
            return v;
        }
        for (;;) {
            v.items.push_back(value(depth + 1));
            skip_ws();
            if (next() == ']') return v;
            --pos_;
            expect(',');
        }
    }

    // A non-negative integer without sign, fraction, exponent or leading zeros, that fits in 64 bits.
    JsonValue integer() {
        JsonValue v = make(JsonValue::Kind::integer);
        if (peek() == '0' && pos_ + 1 < s_.size() && s_[pos_ + 1] >= '0' && s_[pos_ + 1] <= '9')
            error("leading zero in a number");
        while (!at_end() && s_[pos_] >= '0' && s_[pos_] <= '9') {
            const std::uint64_t d = std::uint64_t(s_[pos_] - '0');
            if (v.number > (UINT64_MAX - d) / 10) error("number does not fit in 64 bits");
            v.number = v.number * 10 + d;
            ++pos_;
        }
        if (!at_end() && (s_[pos_] == '.' || s_[pos_] == 'e' || s_[pos_] == 'E'))
            error("only non-negative integers are allowed");
        return v;
    }

    // Four hex digits of a \uXXXX escape.
    std::uint32_t hex4() {
        std::uint32_t u = 0;
        for (int i = 0; i < 4; ++i) {
            const unsigned char c = next();
            u <<= 4;
            if (c >= '0' && c <= '9') u |= c - '0';
            else if (c >= 'a' && c <= 'f') u |= c - 'a' + 10;
            else if (c >= 'A' && c <= 'F') u |= c - 'A' + 10;
            else error("bad \\u escape");
        }
        return u;
    }

    static void append_utf8(std::string& out, std::uint32_t cp) {
        if (cp < 0x80) {
            out += char(cp);
        } else if (cp < 0x800) {
            out += char(0xC0 | (cp >> 6));
            out += char(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            out += char(0xE0 | (cp >> 12));
            out += char(0x80 | ((cp >> 6) & 0x3F));
            out += char(0x80 | (cp & 0x3F));
        } else {
            out += char(0xF0 | (cp >> 18));
            out += char(0x80 | ((cp >> 12) & 0x3F));
            out += char(0x80 | ((cp >> 6) & 0x3F));
            out += char(0x80 | (cp & 0x3F));
        }
    }

    // An escape after the backslash: \" \\ \/ \b \f \n \r \t or \uXXXX (with surrogate pairs).
    void escape(std::string& out) {
        const unsigned char c = next();
        switch (c) {
            case '"': out += '"'; return;
            case '\\': out += '\\'; return;
            case '/': out += '/'; return;
            case 'b': out += '\b'; return;
            case 'f': out += '\f'; return;
            case 'n': out += '\n'; return;
            case 'r': out += '\r'; return;
            case 't': out += '\t'; return;
            case 'u': break;
            default: --pos_; error("unknown escape");
        }
        std::uint32_t cp = hex4();
        if (cp >= 0xDC00 && cp <= 0xDFFF) error("lone low surrogate");
        if (cp >= 0xD800 && cp <= 0xDBFF) {  // a high surrogate must be followed by a low one
            if (next() != '\\' || next() != 'u') error("high surrogate without a low surrogate");
            const std::uint32_t lo = hex4();
            if (lo < 0xDC00 || lo > 0xDFFF) error("high surrogate without a low surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        }
        append_utf8(out, cp);
    }

    // One raw UTF-8 sequence starting with lead byte c (≥ 0x80), validated: no overlong forms,
    // no surrogates, nothing above U+10FFFF.
    void utf8(std::string& out, unsigned char c) {
        int extra = 0;
        std::uint32_t cp = 0, min = 0;
        if (c >= 0xC2 && c <= 0xDF) extra = 1, cp = c & 0x1F, min = 0x80;
        else if (c >= 0xE0 && c <= 0xEF) extra = 2, cp = c & 0x0F, min = 0x800;
        else if (c >= 0xF0 && c <= 0xF4) extra = 3, cp = c & 0x07, min = 0x10000;
        else error("invalid UTF-8");
        out += char(c);
        for (int i = 0; i < extra; ++i) {
            const unsigned char b = next();
            if ((b & 0xC0) != 0x80) error("invalid UTF-8");
            cp = (cp << 6) | (b & 0x3F);
            out += char(b);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) error("invalid UTF-8");
    }

    std::string string() {
        std::string out;
        expect('"');
        for (;;) {
            const unsigned char c = next();
            if (c == '"') return out;
            if (c == '\\') escape(out);
            else if (c < 0x20) error("control character in a string");
            else if (c >= 0x80) utf8(out, c);
            else out += char(c);
        }
    }
};

}  // namespace

JsonValue parse_json(std::string_view text, std::string_view context, bool any_json) {
    return Parser(text, context, any_json).document();
}

void append_json_string(std::string& out, std::string_view s) {
    out += '"';
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += ch;
        } else if (c < 0x20) {
            out += fmt::format("\\u{:04x}", c);
        } else {
            out += ch;
        }
    }
    out += '"';
}

}  // namespace qkv::io::detail
