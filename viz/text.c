/* text.c: class names and captions in a real font, rasterised by FreeType (8-bit
 * anti-aliased coverage blended over the canvas). */
#include "viz.h"

#include <ft2build.h>
#include FT_FREETYPE_H

#include <stdlib.h>

#define DEFAULT_FONT "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

struct viz_font {
    FT_Library lib;
    FT_Face face;
    int px;
};

viz_font *viz_font_open(const char *path, int px, avps_error *err) {
    if (!path)
        path = getenv("AVPS_FONT") ? getenv("AVPS_FONT") : DEFAULT_FONT;
    viz_font *f = calloc(1, sizeof *f);
    if (!f) {
        avps_fail(err, "out of memory");
        return NULL;
    }
    f->px = px;
    if (FT_Init_FreeType(&f->lib) != 0) {
        free(f);
        avps_fail(err, "FreeType could not start");
        return NULL;
    }
    if (FT_New_Face(f->lib, path, 0, &f->face) != 0 || FT_Set_Pixel_Sizes(f->face, 0, (FT_UInt)px) != 0) {
        FT_Done_FreeType(f->lib);
        free(f);
        avps_fail(err, "%s: cannot open this font (Debian: apt-get install fonts-dejavu-core; or set AVPS_FONT)",
                  path);
        return NULL;
    }
    return f;
}

void viz_font_free(viz_font *f) {
    if (!f)
        return;
    FT_Done_Face(f->face);
    FT_Done_FreeType(f->lib);
    free(f);
}

/* The next code point of UTF-8 text (a malformed byte stands for itself). */
static uint32_t next_code(const char **s) {
    const unsigned char *p = (const unsigned char *)*s;
    uint32_t c = *p++;
    int more = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
    if (more)
        c &= 0x3Fu >> more;
    for (; more > 0 && (*p & 0xC0) == 0x80; more--)
        c = c << 6 | (*p++ & 0x3F);
    *s = (const char *)p;
    return c;
}

int viz_text_width(viz_font *f, const char *text) {
    long w = 0;
    while (*text)
        if (FT_Load_Char(f->face, next_code(&text), FT_LOAD_DEFAULT) == 0)
            w += f->face->glyph->advance.x >> 6;
    return (int)w;
}

static void blend(viz_canvas *c, long x, long y, const uint8_t rgb[3], unsigned cover) {
    if (x < 0 || y < 0 || x >= (long)c->width || y >= (long)c->height || cover == 0)
        return;
    uint8_t *p = c->rgb + 3 * ((size_t)y * c->width + (size_t)x);
    for (int k = 0; k < 3; k++)
        p[k] = (uint8_t)((p[k] * (255 - cover) + rgb[k] * cover + 127) / 255);
}

void viz_draw_text(viz_canvas *c, viz_font *f, int x, int y, const char *text, const uint8_t rgb[3],
                   const uint8_t *box) {
    int ascent = (int)(f->face->size->metrics.ascender >> 6);
    int height = (int)((f->face->size->metrics.ascender - f->face->size->metrics.descender) >> 6);
    if (box)
        viz_fill_rect(c, x - 2, y, viz_text_width(f, text) + 4, height + 1, box);
    long pen = x;
    while (*text) {
        if (FT_Load_Char(f->face, next_code(&text), FT_LOAD_RENDER) != 0)
            continue;
        FT_GlyphSlot g = f->face->glyph;
        for (unsigned r = 0; r < g->bitmap.rows; r++)
            for (unsigned q = 0; q < g->bitmap.width; q++)
                blend(c, pen + g->bitmap_left + q, (long)y + ascent - g->bitmap_top + r, rgb,
                      g->bitmap.buffer[(size_t)r * (size_t)g->bitmap.pitch + q]);
        pen += g->advance.x >> 6;
    }
}
