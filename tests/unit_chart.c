/* unit_chart.c: viz's chart model: refusals of charts that do not hold together, the
 * ticks, the layout both renderings share (a bar's end where its value says), NAN drawing
 * nothing, and the escaping of names the SVG figures and the HTML page share. */
#include "../viz/viz.h"
#include "check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *slurp(const char *path) {
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return NULL;
    char *s = calloc(1, 1 << 16);
    if (s)
        s[fread(s, 1, (1 << 16) - 1, fp)] = 0;
    fclose(fp);
    return s;
}

int main(void) {
    check_tally tally = {0}, *t = &tally;
    avps_error err;
    const char *names[3] = {"a<b", "c&d\"e'", "\x01plain"};
    double a[3] = {10, 50, NAN}, b[2] = {1, 2};
    viz_series s[2] = {{.name = "one", .color = {1, 2, 3}, .n = 3, .y = a}, {.name = "two", .n = 2, .y = b}};
    viz_chart c = {.kind = VIZ_CHART_BARS, .title = "t", .v_min = 0, .v_max = 100, .n_categories = 3,
                   .category = names, .n_series = 1, .series = s};
    CHECK(t, viz_chart_check(&c, &err) == 0);
    c.n_series = 2;
    CHECK(t, viz_chart_check(&c, &err) != 0 && strstr(err.msg, "series \"two\" has 2 values for 3 categories"));
    c.n_series = 1;
    c.v_max = 0;
    CHECK(t, viz_chart_check(&c, &err) != 0 && strstr(err.msg, "value axis is empty"));
    c.v_max = 100;
    int hl[3] = {0, 1, -1};
    c.highlight = hl;
    CHECK(t, viz_chart_check(&c, &err) != 0 && strstr(err.msg, "highlights series 1 of 1"));
    hl[1] = 0;
    CHECK(t, viz_chart_check(&c, &err) == 0);

    CHECK(t, fabs(viz_chart_tick_step(0, 100) - 20) < 1e-12);
    CHECK(t, fabs(viz_chart_tick_step(0, 1) - 0.2) < 1e-12);
    CHECK(t, fabs(viz_chart_tick_step(0, 7) - 1) < 1e-12);

    viz_chart_box box;
    viz_chart_layout(&c, &box);
    CHECK(t, fabs(viz_chart_value_pos(&c, &box, 50) - (box.plot_x + box.plot_w / 2.0)) < 1e-9);
    CHECK(t, viz_chart_value_pos(&c, &box, 150) == box.plot_x + box.plot_w); /* clamped */
    CHECK(t, viz_chart_bar_top(&box, &c, 1, 0) == viz_chart_bar_top(&box, &c, 0, 0) + box.row_h);
    CHECK(t, box.plot_y + box.plot_h <= box.height && box.plot_x + box.plot_w <= box.width);

    char dir[] = "/tmp/avps_chart_XXXXXX", path[64];
    CHECK(t, mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/c.svg", dir);
    CHECK(t, viz_chart_write(&c, path, &err) == 0);
    char *svg = slurp(path);
    CHECK(t, svg && strstr(svg, ">a&lt;b</text>") && strstr(svg, ">c&amp;d&quot;e&#39;</text>") &&
                 strstr(svg, ">plain</text>"));
    /* two bars drawn (NAN none), the first outlined, and 50 % of the width long */
    size_t bars = 0;
    for (const char *p = svg; p && (p = strstr(p, "<rect class=\"bar")); p++)
        bars++;
    char want[96];
    snprintf(want, sizeof want, "data-category=\"1\" x=\"%d\" y=\"%d\" width=\"%.2f\"", box.plot_x,
             viz_chart_bar_top(&box, &c, 1, 0), box.plot_w / 2.0);
    CHECK(t, bars == 2 && strstr(svg, "class=\"bar pick\" data-series=\"0\" data-category=\"0\"") && strstr(svg, want));
    free(svg);
    unlink(path);
    snprintf(path, sizeof path, "%s/c.pdf", dir);
    CHECK(t, viz_chart_write(&c, path, &err) != 0 && strstr(err.msg, "as .svg or .png") && access(path, F_OK) != 0);
    snprintf(path, sizeof path, "%s/c.png", dir);
    CHECK(t, viz_chart_write(&c, path, &err) == 0 && access(path, F_OK) == 0);
    unlink(path);
    rmdir(dir);

    /* the escaper alone: the five characters as references, XML's whitespace kept, the
     * control bytes XML cannot hold dropped, UTF-8 untouched */
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    CHECK(t, mem != NULL);
    if (mem) {
        viz_put_escaped(mem, "<a href=\"x\">Tom's &amp;</a>\t\n\r\x01\x1f\x7f\xc3\xa9");
        viz_put_escaped(mem, NULL);
        fclose(mem);
        CHECK(t, text && strcmp(text, "&lt;a href=&quot;x&quot;&gt;Tom&#39;s &amp;amp;&lt;/a&gt;\t\n\r\x7f\xc3\xa9") == 0);
        free(text);
    }
    return check_report(t);
}
