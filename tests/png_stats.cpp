/// \file
/// \brief Test helper: how much of a PNG image is not background, for the browser test of the
/// attention page (is the screenshot blank?).
///
/// Usage: `png_stats FILE`. Prints `pixels N, non-white F, colours K`: the number of pixels, the
/// fraction that are not pure white (the page's background), and the number of distinct colours.
/// Exit status 1 when the file cannot be read as a PNG.
#include <png.h>

#include <cstdio>
#include <set>
#include <vector>

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: png_stats FILE\n");
        return 2;
    }
    png_image image{};
    image.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&image, argv[1])) {
        std::fprintf(stderr, "png_stats: %s: %s\n", argv[1], image.message);
        return 1;
    }
    image.format = PNG_FORMAT_RGB;
    std::vector<png_byte> pixels(PNG_IMAGE_SIZE(image));
    if (!png_image_finish_read(&image, nullptr, pixels.data(), 0, nullptr)) {
        std::fprintf(stderr, "png_stats: %s: %s\n", argv[1], image.message);
        return 1;
    }
    const std::size_t n = std::size_t(image.width) * image.height;
    std::size_t coloured = 0;
    std::set<unsigned> colours;
    for (std::size_t i = 0; i < n; ++i) {
        const unsigned r = pixels[3 * i], g = pixels[3 * i + 1], b = pixels[3 * i + 2];
        coloured += (r & g & b) != 255;
        colours.insert(r << 16 | g << 8 | b);
    }
    std::printf("pixels %zu, non-white %.4f, colours %zu\n", n, n ? double(coloured) / double(n) : 0.0, colours.size());
    return 0;
}
