/* unit_category_map: --category-map's forms (data/category_map.c): the presets' sizes and
 * ids, JSON objects and lists inline and in files, null, and every refusal naming the
 * index or the spec. */
#include "../data/data.h"
#include "check.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int loads(const char *spec, category_map *m, avps_error *err) { return category_map_load(spec, m, err) == 0; }

static void test_presets(check_tally *t) {
    category_map m;
    avps_error err;
    CHECK(t, loads("coco80", &m, &err) && m.n == 80);
    CHECK(t, category_map_get(&m, 0) == 1 && category_map_get(&m, 11) == 13 && category_map_get(&m, 79) == 90);
    CHECK(t, category_map_get(&m, 80) == CATEGORY_MAP_ABSENT && category_map_get(&m, -1) == CATEGORY_MAP_ABSENT);
    category_map_release(&m);
    const char *same[] = {"coco133", "detectron2-coco-panoptic", "mmdet-coco-panoptic"};
    for (int k = 0; k < 3; k++) {
        CHECK(t, loads(same[k], &m, &err) && m.n == 133);
        CHECK(t, category_map_get(&m, 79) == 90 && category_map_get(&m, 80) == 92 && category_map_get(&m, 132) == 200);
        int increasing = 1;
        for (size_t i = 1; i < m.n; i++)
            increasing &= m.to[i] > m.to[i - 1];
        CHECK(t, increasing); /* id order, which is things then stuff for COCO */
        category_map_release(&m);
    }
    CHECK(t, loads("detectron2-panoptic-fpn-stuff", &m, &err) && m.n == 54);
    CHECK(t, category_map_get(&m, 0) == CATEGORY_MAP_NONE && category_map_get(&m, 1) == 92 &&
             category_map_get(&m, 53) == 200);
    category_map_release(&m);
    CHECK(t, !loads("coco81", &m, &err) && strstr(err.msg, "'coco81': not a preset"));
}

static void test_json(check_tally *t) {
    category_map m;
    avps_error err;
    CHECK(t, loads("{\"0\": 5, \"3\": null, \"7\": 12}", &m, &err) && m.n == 8);
    CHECK(t, category_map_get(&m, 0) == 5 && category_map_get(&m, 3) == CATEGORY_MAP_NONE &&
             category_map_get(&m, 7) == 12 && category_map_get(&m, 1) == CATEGORY_MAP_ABSENT);
    category_map_release(&m);
    CHECK(t, loads(" [4, 6, null]", &m, &err) && m.n == 3 && category_map_get(&m, 1) == 6 &&
             category_map_get(&m, 2) == CATEGORY_MAP_NONE);
    category_map_release(&m);
    CHECK(t, !loads("{\"0\": 1, \"0\": 2}", &m, &err) && strstr(err.msg, "index 0 is mapped twice"));
    CHECK(t, !loads("{\"a\": 1}", &m, &err) && strstr(err.msg, "is not an integer"));
    CHECK(t, !loads("{\"70000\": 1}", &m, &err) && strstr(err.msg, "0..65535"));
    CHECK(t, !loads("{\"2\": 0}", &m, &err) && strstr(err.msg, "index 2 must map to a category id"));
    CHECK(t, !loads("{\"2\": 1.5}", &m, &err) && strstr(err.msg, "index 2 must map"));
    CHECK(t, !loads("{}", &m, &err) && strstr(err.msg, "is empty"));
    CHECK(t, !loads("{\"0\": 1", &m, &err) && strstr(err.msg, "a category map is a JSON object"));
}

static void test_files(check_tally *t) {
    char dir[] = "/tmp/avps_cmap_XXXXXX";
    CHECK(t, mkdtemp(dir) != NULL);
    char obj[64], name[64], missing[64];
    snprintf(obj, sizeof obj, "%s/map.json", dir);
    snprintf(name, sizeof name, "%s/name.json", dir);
    snprintf(missing, sizeof missing, "%s/none.json", dir);
    FILE *f = fopen(obj, "w");
    fputs("{\"1\": 3}\n", f);
    fclose(f);
    f = fopen(name, "w");
    fputs("\"coco80\"\n", f);
    fclose(f);
    category_map m;
    avps_error err;
    CHECK(t, loads(obj, &m, &err) && m.n == 2 && category_map_get(&m, 1) == 3 && strcmp(m.name, obj) == 0);
    category_map_release(&m);
    CHECK(t, loads(name, &m, &err) && m.n == 80);
    category_map_release(&m);
    CHECK(t, !loads(missing, &m, &err) && strstr(err.msg, missing));
    unlink(obj);
    unlink(name);
    rmdir(dir);
}

int main(void) {
    check_tally t = {0};
    test_presets(&t);
    test_json(&t);
    test_files(&t);
    return check_report(&t);
}
