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
constexpr DTypeName kDTypes[] = {{f32, "F32"}, {f64, "F64"}, {i32, "I32"}, {b8, "BOOL"}};

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
    DType dtype = f32;
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
        bool known = false;
        for (const auto& d : kDTypes)
            if (d.name == dt) e.dtype = d.dtype, known = true;
        if (!known) fail("{}: tensor '{}': unsupported dtype '{}' (qkv reads F32, F64, I32, BOOL)", ctx_, name, dt);
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
        const std::uint64_t need = std::uint64_t(numel) * dtype_size(e.dtype);  // ≤ 2^63: no overflow
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
        Tensor t = empty(e.shape, e.dtype);
        const std::size_t n = std::size_t(e.end - e.begin);
        if (n > 0) std::memcpy(t.raw_data(), data_.data() + e.begin, n);
        if (e.dtype == b8) {
            const auto* p = static_cast<const std::uint8_t*>(t.raw_data());
            for (std::size_t i = 0; i < n; ++i)
                if (p[i] > 1) fail("{}: tensor '{}': BOOL element {} is {}, not 0 or 1", ctx_, e.name, i, p[i]);
        }
        return t;
    }
};

}  // namespace

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
    const std::string bytes = detail::read_file(path, "load_safetensors");
    return parse_safetensors(bytes, path);
}

namespace detail {
void set_write_fault(std::int64_t after_bytes) { g_write_fault_after = after_bytes; }
}  // namespace detail

}  // namespace qkv::io
