/// \file
/// \brief The safetensors format: encoding a header and data, and decoding them defensively.
///
/// A reader learns here how to read a binary format from an untrusted file: compute nothing from a
/// number in the file before checking it against the file's real size, check every byte range
/// before copying from it, and report the first problem with the name of the tensor it concerns.
#include <algorithm>
#include <bit>
#include <cstring>
#include <numeric>
#include <set>

#include "io_detail.hpp"
#include "qkv/io/file.hpp"
#include "qkv/io/safetensors.hpp"

namespace qkv::io {

// Tensors are stored little-endian, and we copy them with memcpy: that is only right on a
// little-endian machine (x86-64 and ARM64 both are).
static_assert(std::endian::native == std::endian::little, "qkv's safetensors I/O assumes a little-endian machine");

namespace {

constexpr std::uint64_t kMaxHeader = 100'000'000;  // the reference implementation's limit
constexpr std::string_view kCrcKey = "qkv.crc32";
constexpr std::string_view kFormatKey = "qkv.format";
constexpr std::string_view kFormatValue = "safetensors/1";

struct DTypeName {
    DType dtype;
    std::string_view name;
};
// What qkv writes: each of its dtypes under its safetensors name.
constexpr DTypeName kDTypes[] = {{f32, "F32"}, {f64, "F64"}, {i32, "I32"}, {b8, "BOOL"}};

// What qkv reads: also the element types PyTorch writes for these models, converted on reading
// to the qkv dtype that holds every value exactly (F16 and BF16 to f32: both are f32 with fewer
// exponent or mantissa bits) or to i32 with a range check (I64: PyTorch's default integer type,
// whose token ids fit in 32 bits unless the file is wrong).
enum class Stored : std::uint8_t { f32, f64, i32, b8, f16, bf16, i64, u8 };
struct StoredType {
    Stored stored;
    std::string_view name;
    std::uint64_t size;  // bytes per element in the file
    DType dtype;         // what it becomes in qkv
};
constexpr StoredType kStored[] = {
    {Stored::f32, "F32", 4, f32},  {Stored::f64, "F64", 8, f64},   {Stored::i32, "I32", 4, i32},
    {Stored::b8, "BOOL", 1, b8},   {Stored::f16, "F16", 2, f32},   {Stored::bf16, "BF16", 2, f32},
    {Stored::i64, "I64", 8, i32},  {Stored::u8, "U8", 1, i32},
};

std::string hex8(std::uint32_t v) { return fmt::format("{:08x}", v); }

// ---- encoding ------------------------------------------------------------------------------------

void check_for_saving(const std::vector<NamedTensor>& tensors, const Metadata& metadata) {
    std::set<std::string_view> names;  // O(n log n), like the reader's duplicate check
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        const auto& [name, t] = tensors[i];
        if (name.empty()) fail("save_safetensors: tensor {} has an empty name", i);
        if (name == "__metadata__") fail("save_safetensors: '__metadata__' is reserved and cannot name a tensor");
        if (!t.defined()) fail("save_safetensors: tensor '{}' is undefined", name);
        if (!names.insert(name).second) fail("save_safetensors: tensor name '{}' appears twice", name);
    }
    for (const auto& [key, value] : metadata)
        if (key.rfind("qkv.", 0) == 0) fail("save_safetensors: metadata key '{}' is reserved (prefix 'qkv.')", key);
}

// The JSON header (unpadded) with "00000000" where the CRC goes; crc_pos receives that position.
std::string header_json(const std::vector<NamedTensor>& tensors, const std::vector<std::uint64_t>& begin,
                        const Metadata& metadata, std::size_t& crc_pos) {
    Metadata meta = metadata;
    meta[std::string(kCrcKey)] = "00000000";
    meta[std::string(kFormatKey)] = std::string(kFormatValue);
    std::string h = "{\"__metadata__\":{";
    bool first = true;
    for (const auto& [key, value] : meta) {
        if (!first) h += ',';
        first = false;
        detail::append_json_string(h, key);
        h += ':';
        if (key == kCrcKey) crc_pos = h.size() + 1;  // just after the opening quote
        detail::append_json_string(h, value);
    }
    h += '}';
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        const Tensor& t = tensors[i].second;
        const std::uint64_t nbytes = std::uint64_t(t.numel()) * dtype_size(t.dtype());
        h += ',';
        detail::append_json_string(h, tensors[i].first);
        h += fmt::format(":{{\"dtype\":\"{}\",\"shape\":[{}],\"data_offsets\":[{},{}]}}", safetensors_dtype(t.dtype()),
                         fmt::join(t.shape(), ","), begin[i], begin[i] + nbytes);
    }
    h += '}';
    return h;
}

// ---- decoding ------------------------------------------------------------------------------------

// One tensor entry of a header, checked for form but not yet against the data section.
struct Entry {
    std::string name;
    const StoredType* type = nullptr;  // the element type in the file (and the qkv dtype it becomes)
    Shape shape;
    std::uint64_t begin = 0, end = 0;
};

class Decoder {
public:
    Decoder(std::string_view bytes, std::string_view source)
        : bytes_(bytes), ctx_(fmt::format("load_safetensors: '{}'", source)) {}

    SafeTensors run() {
        const std::string_view header = split_header();
        const detail::JsonValue root = detail::parse_json(header, ctx_);
        if (root.kind != detail::JsonValue::Kind::object)
            fail("{}: the header must be a JSON object, got {}", ctx_, detail::json_kind_name(root.kind));
        SafeTensors out;
        std::vector<Entry> entries;
        const detail::JsonValue* crc = nullptr;
        for (const auto& [name, value] : root.members) {
            if (name == "__metadata__") crc = metadata(value, out.metadata);
            else entries.push_back(entry(name, value));
        }
        check_layout(entries);
        out.crc_verified = check_crc(out.metadata, crc);
        for (const auto& e : entries) out.tensors.emplace_back(e.name, make_tensor(e));
        return out;
    }

private:
    std::string_view bytes_;
    std::string ctx_;
    std::uint64_t header_len_ = 0;
    std::string_view data_;

    // Read N and cut the file into header and data, trusting N only after comparing it to the size.
    std::string_view split_header() {
        if (bytes_.size() < 8)
            fail("{}: file is {} bytes, too short for the 8-byte header length (truncated?)", ctx_, bytes_.size());
        for (int i = 7; i >= 0; --i) header_len_ = (header_len_ << 8) | static_cast<unsigned char>(bytes_[std::size_t(i)]);
        if (header_len_ > bytes_.size() - 8)
            fail("{}: header length {} exceeds the {} bytes after it (truncated or corrupt file)", ctx_, header_len_,
                 bytes_.size() - 8);
        if (header_len_ > kMaxHeader) fail("{}: header length {} exceeds the limit of {} bytes", ctx_, header_len_, kMaxHeader);
        data_ = bytes_.substr(8 + header_len_);
        return bytes_.substr(8, header_len_);
    }

    // __metadata__: an object of strings. Returns the qkv.crc32 value node, if any.
    const detail::JsonValue* metadata(const detail::JsonValue& v, Metadata& out) const {
        if (v.kind != detail::JsonValue::Kind::object)
            fail("{}: __metadata__ must be an object, got {}", ctx_, detail::json_kind_name(v.kind));
        const detail::JsonValue* crc = nullptr;
        for (const auto& [key, value] : v.members) {
            if (value.kind != detail::JsonValue::Kind::string)
                fail("{}: metadata '{}' must be a string, got {}", ctx_, key, detail::json_kind_name(value.kind));
            if (key == kCrcKey) crc = &value;
            out[key] = value.text;
        }
        return crc;
    }

    const detail::JsonValue& field(const std::string& name, const detail::JsonValue& v, std::string_view key,
                                   detail::JsonValue::Kind kind) const {
        for (const auto& [k, value] : v.members)
            if (k == key) {
                if (value.kind != kind)
                    fail("{}: tensor '{}': \"{}\" must be {}, got {}", ctx_, name, key, detail::json_kind_name(kind),
                         detail::json_kind_name(value.kind));
                return value;
            }
        fail("{}: tensor '{}': missing \"{}\"", ctx_, name, key);
    }

    Entry entry(const std::string& name, const detail::JsonValue& v) const {
        using Kind = detail::JsonValue::Kind;
        if (v.kind != Kind::object) fail("{}: tensor '{}' must be an object, got {}", ctx_, name, detail::json_kind_name(v.kind));
        for (const auto& [k, value] : v.members)
            if (k != "dtype" && k != "shape" && k != "data_offsets") fail("{}: tensor '{}': unexpected field \"{}\"", ctx_, name, k);
        Entry e;
        e.name = name;
        const std::string& dt = field(name, v, "dtype", Kind::string).text;
        for (const auto& t : kStored)
            if (t.name == dt) e.type = &t;
        if (e.type == nullptr)
            fail("{}: tensor '{}': unsupported dtype '{}' (qkv reads F32, F64, F16, BF16, I64, I32, U8, BOOL)", ctx_,
                 name, dt);
        for (const auto& dim : field(name, v, "shape", Kind::array).items) {
            if (dim.kind != Kind::integer || dim.number > std::uint64_t(INT64_MAX))
                fail("{}: tensor '{}': shape entries must be non-negative integers", ctx_, name);
            e.shape.push_back(std::int64_t(dim.number));
        }
        const auto& offsets = field(name, v, "data_offsets", Kind::array).items;
        if (offsets.size() != 2 || offsets[0].kind != Kind::integer || offsets[1].kind != Kind::integer)
            fail("{}: tensor '{}': data_offsets must be two integers [begin, end]", ctx_, name);
        e.begin = offsets[0].number;
        e.end = offsets[1].number;
        if (e.begin > e.end) fail("{}: tensor '{}': data_offsets [{}, {}] end before they begin", ctx_, name, e.begin, e.end);
        // The element count, checked the way empty() will check it: the product of the nonzero sizes
        // must stay within 2^60, so no later multiplication of sizes can overflow — not even for a
        // shape such as [2^62, 2, 0], whose product is 0 but whose leading sizes are not.
        const std::int64_t numel = checked_numel(e.shape);
        if (numel < 0)
            fail("{}: tensor '{}': shape {} has more than 2^60 elements (the most a tensor can hold)", ctx_, name,
                 shape_str(e.shape));
        const std::uint64_t need = std::uint64_t(numel) * e.type->size;  // ≤ 2^63: no overflow
        if (need != e.end - e.begin)
            fail("{}: tensor '{}': shape {} of {} needs {} bytes, but data_offsets [{}, {}] hold {}", ctx_, name,
                 shape_str(e.shape), dt, need, e.begin, e.end, e.end - e.begin);
        return e;
    }

    // Sorted by offset, the tensors must tile the data section: [0, a) [a, b) ... [y, size).
    void check_layout(const std::vector<Entry>& entries) const {
        std::vector<const Entry*> sorted;
        for (const auto& e : entries) sorted.push_back(&e);
        std::stable_sort(sorted.begin(), sorted.end(),
                         [](const Entry* a, const Entry* b) { return a->begin != b->begin ? a->begin < b->begin : a->end < b->end; });
        std::uint64_t at = 0;
        const Entry* prev = nullptr;
        for (const Entry* e : sorted) {
            if (e->end > data_.size())
                fail("{}: tensor '{}': data_offsets [{}, {}] go past the end of the {}-byte data section (truncated file?)",
                     ctx_, e->name, e->begin, e->end, data_.size());
            if (e->begin < at)
                fail("{}: tensors '{}' and '{}' overlap (data_offsets [{}, {}] and [{}, {}])", ctx_, prev->name, e->name,
                     prev->begin, prev->end, e->begin, e->end);
            if (e->begin > at) fail("{}: data bytes [{}, {}) before tensor '{}' belong to no tensor", ctx_, at, e->begin, e->name);
            at = e->end;
            prev = e;
        }
        if (at != data_.size())
            fail("{}: data section is {} bytes but the tensors cover only {} (trailing bytes)", ctx_, data_.size(), at);
    }

    // The CRC of the whole file with the stored digits replaced by "00000000" (the writer computed
    // it that way, before it knew them). Returns whether there was one to check (it matched, or
    // this throws).
    bool check_crc(Metadata& meta, const detail::JsonValue* crc) const {
        const bool has_format = meta.count(std::string(kFormatKey)) != 0;
        if (!crc && !has_format) return false;  // not written by qkv: nothing to check
        if (!crc) fail("{}: metadata has '{}' but no '{}' (corrupt file)", ctx_, kFormatKey, kCrcKey);
        if (!has_format) fail("{}: metadata has '{}' but no '{}' (corrupt file)", ctx_, kCrcKey, kFormatKey);
        const std::size_t pos = 8 + crc->offset + 1;  // first digit, after the opening quote
        const bool plain = crc->text.size() == 8 && pos + 9 <= bytes_.size() && bytes_.substr(pos, 8) == crc->text &&
                           bytes_[pos + 8] == '"' &&
                           std::all_of(crc->text.begin(), crc->text.end(),
                                       [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
        if (!plain) fail("{}: metadata '{}' must be 8 lowercase hex digits, got \"{}\"", ctx_, kCrcKey, crc->text);
        std::uint32_t c = detail::crc32_update(0, bytes_.data(), pos);
        c = detail::crc32_update(c, "00000000", 8);
        c = detail::crc32_update(c, bytes_.data() + pos + 8, bytes_.size() - pos - 8);
        if (hex8(c) != crc->text)
            fail("{}: CRC-32 mismatch (stored {}, computed {}): the file is corrupt", ctx_, crc->text, hex8(c));
        meta.erase(std::string(kCrcKey));
        meta.erase(std::string(kFormatKey));
        return true;
    }

    Tensor make_tensor(const Entry& e) const {
        Tensor t = empty(e.shape, e.type->dtype);
        const std::size_t nbytes = std::size_t(e.end - e.begin);
        const std::size_t n = std::size_t(t.numel());
        const char* src = data_.data() + e.begin;
        // Element i of the file, as a little-endian unsigned integer of `size` bytes (memcpy: the
        // data section gives no alignment guarantee for a file another program wrote).
        auto bits = [&](std::size_t i, auto zero) {
            decltype(zero) v;
            std::memcpy(&v, src + i * sizeof v, sizeof v);
            return v;
        };
        switch (e.type->stored) {
            case Stored::f32:
            case Stored::f64:
            case Stored::i32:
                if (nbytes > 0) std::memcpy(t.raw_data(), src, nbytes);
                break;
            case Stored::b8: {
                if (nbytes > 0) std::memcpy(t.raw_data(), src, nbytes);
                const auto* p = static_cast<const std::uint8_t*>(t.raw_data());
                for (std::size_t i = 0; i < n; ++i)
                    if (p[i] > 1) fail("{}: tensor '{}': BOOL element {} is {}, not 0 or 1", ctx_, e.name, i, p[i]);
                break;
            }
            case Stored::f16: {
                float* out = t.data<float>();
                for (std::size_t i = 0; i < n; ++i) out[i] = half_to_float(bits(i, std::uint16_t{}));
                break;
            }
            case Stored::bf16: {
                float* out = t.data<float>();
                for (std::size_t i = 0; i < n; ++i) out[i] = bfloat16_to_float(bits(i, std::uint16_t{}));
                break;
            }
            case Stored::i64: {
                std::int32_t* out = t.data<std::int32_t>();
                for (std::size_t i = 0; i < n; ++i) {
                    const auto v = std::int64_t(bits(i, std::uint64_t{}));
                    if (v < INT32_MIN || v > INT32_MAX)
                        fail("{}: tensor '{}': I64 element {} is {}, outside the range of int32 that qkv's integer "
                             "tensors hold",
                             ctx_, e.name, i, v);
                    out[i] = std::int32_t(v);
                }
                break;
            }
            case Stored::u8: {
                std::int32_t* out = t.data<std::int32_t>();
                for (std::size_t i = 0; i < n; ++i) out[i] = bits(i, std::uint8_t{});
                break;
            }
        }
        return t;
    }
};

}  // namespace

float half_to_float(std::uint16_t h) {
    // IEEE 754 binary16: 1 sign bit, 5 exponent bits (bias 15), 10 mantissa bits. Every value is
    // exactly representable in binary32 (8 exponent bits, bias 127, 23 mantissa bits), so this is
    // a re-arrangement of bits, never a rounding.
    const std::uint32_t sign = std::uint32_t(h >> 15) << 31;
    const std::uint32_t exponent = (h >> 10) & 0x1F;
    std::uint32_t mantissa = h & 0x3FF;
    std::uint32_t f = 0;
    if (exponent == 0x1F) {
        f = sign | 0x7F800000u | (mantissa << 13);  // infinity (mantissa 0) or NaN (payload kept)
    } else if (exponent != 0) {
        f = sign | ((exponent - 15 + 127) << 23) | (mantissa << 13);  // normal: rebias the exponent
    } else if (mantissa == 0) {
        f = sign;  // ±0
    } else {
        // Subnormal: mantissa · 2^-24. Shift the leading 1 up to the implicit bit's place
        // (bit 10), lowering the exponent by one per shift; in binary32 the value is normal.
        int e = -14;
        while ((mantissa & 0x400) == 0) {
            mantissa <<= 1;
            --e;
        }
        f = sign | (std::uint32_t(e + 127) << 23) | ((mantissa & 0x3FF) << 13);
    }
    return std::bit_cast<float>(f);
}

float bfloat16_to_float(std::uint16_t b) {
    // bfloat16 is the upper half of a binary32: the same sign and 8-bit exponent, 7 mantissa bits.
    return std::bit_cast<float>(std::uint32_t(b) << 16);
}

std::string_view safetensors_dtype(DType dtype) {
    for (const auto& d : kDTypes)
        if (d.dtype == dtype) return d.name;
    fail("safetensors_dtype: unknown dtype {}", int(dtype));
}

void save_safetensors(const std::string& path, const std::vector<NamedTensor>& tensors, const Metadata& metadata) {
    check_for_saving(tensors, metadata);
    // Data layout: widest elements first (stable), so each tensor's offset is a multiple of its
    // element size — the header still lists the tensors in the caller's order.
    std::vector<std::size_t> order(tensors.size());
    std::iota(order.begin(), order.end(), std::size_t{0});
    std::stable_sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
        return dtype_size(tensors[a].second.dtype()) > dtype_size(tensors[b].second.dtype());
    });
    std::vector<std::uint64_t> begin(tensors.size());
    std::uint64_t at = 0;
    for (const std::size_t i : order) {
        begin[i] = at;
        at += std::uint64_t(tensors[i].second.numel()) * dtype_size(tensors[i].second.dtype());
    }

    std::size_t crc_pos = 0;
    std::string header = header_json(tensors, begin, metadata, crc_pos);
    header.append((8 - header.size() % 8) % 8, ' ');  // the data section starts 8-byte aligned
    std::string prefix(8, '\0');
    for (int i = 0; i < 8; ++i) prefix[std::size_t(i)] = char((std::uint64_t(header.size()) >> (8 * i)) & 0xFF);

    std::vector<std::string_view> pieces{prefix, header};
    for (const std::size_t i : order) {
        const Tensor& t = tensors[i].second;
        pieces.emplace_back(static_cast<const char*>(t.raw_data()), std::size_t(t.numel()) * dtype_size(t.dtype()));
    }
    // CRC over the file as it will be, with "00000000" as the digits; then fill them in.
    std::uint32_t crc = 0;
    for (const auto piece : pieces) crc = detail::crc32_update(crc, piece.data(), piece.size());
    header.replace(crc_pos, 8, hex8(crc));
    pieces[1] = header;
    detail::write_file_atomic(path, pieces, "save_safetensors");
}

SafeTensors parse_safetensors(std::string_view bytes, std::string_view source) { return Decoder(bytes, source).run(); }

SafeTensors load_safetensors(const std::string& path) {
    const std::string bytes = read_file(path, "load_safetensors");
    return parse_safetensors(bytes, path);
}

namespace detail {
void set_write_fault(std::int64_t after_bytes) { g_write_fault_after = after_bytes; }
}  // namespace detail

}  // namespace qkv::io
