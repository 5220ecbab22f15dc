/* synth_categories.c: the category table of the synthetic world: the 133 COCO panoptic
 * categories with their COCO ids, names and supercategories (a public fact), plus how
 * often and how large the world draws each. Frequencies are rough relative weights
 * within a kind, near COCO's instance counts for things (in hundreds) and near the share
 * of images showing each stuff class (in tenths of a percent); sizes say whether a thing
 * is typically small (-1), medium (0) or large (1). */
#include "data.h"
#include "synth_world.h"

#include <stdio.h>
#include <string.h>

#define N_THINGS 80
#define N_STUFF (SYNTH_CATEGORY_COUNT - N_THINGS)

static const synth_category_info categories[SYNTH_CATEGORY_COUNT] = {
    {1, 1, "person", "person", 2620, 0},
    {2, 1, "bicycle", "vehicle", 71, 0},
    {3, 1, "car", "vehicle", 440, 0},
    {4, 1, "motorcycle", "vehicle", 87, 0},
    {5, 1, "airplane", "vehicle", 51, 1},
    {6, 1, "bus", "vehicle", 61, 1},
    {7, 1, "train", "vehicle", 46, 1},
    {8, 1, "truck", "vehicle", 99, 1},
    {9, 1, "boat", "vehicle", 107, 0},
    {10, 1, "traffic light", "outdoor", 130, -1},
    {11, 1, "fire hydrant", "outdoor", 19, 0},
    {13, 1, "stop sign", "outdoor", 20, 0},
    {14, 1, "parking meter", "outdoor", 13, -1},
    {15, 1, "bench", "outdoor", 98, 0},
    {16, 1, "bird", "animal", 108, -1},
    {17, 1, "cat", "animal", 48, 1},
    {18, 1, "dog", "animal", 55, 0},
    {19, 1, "horse", "animal", 66, 0},
    {20, 1, "sheep", "animal", 95, 0},
    {21, 1, "cow", "animal", 81, 0},
    {22, 1, "elephant", "animal", 55, 1},
    {23, 1, "bear", "animal", 13, 1},
    {24, 1, "zebra", "animal", 53, 1},
    {25, 1, "giraffe", "animal", 51, 1},
    {27, 1, "backpack", "accessory", 87, -1},
    {28, 1, "umbrella", "accessory", 113, 0},
    {31, 1, "handbag", "accessory", 124, -1},
    {32, 1, "tie", "accessory", 65, -1},
    {33, 1, "suitcase", "accessory", 62, 0},
    {34, 1, "frisbee", "sports", 27, -1},
    {35, 1, "skis", "sports", 66, -1},
    {36, 1, "snowboard", "sports", 27, -1},
    {37, 1, "sports ball", "sports", 63, -1},
    {38, 1, "kite", "sports", 91, -1},
    {39, 1, "baseball bat", "sports", 33, -1},
    {40, 1, "baseball glove", "sports", 37, -1},
    {41, 1, "skateboard", "sports", 55, -1},
    {42, 1, "surfboard", "sports", 61, 0},
    {43, 1, "tennis racket", "sports", 48, -1},
    {44, 1, "bottle", "kitchen", 240, -1},
    {46, 1, "wine glass", "kitchen", 79, -1},
    {47, 1, "cup", "kitchen", 203, -1},
    {48, 1, "fork", "kitchen", 55, -1},
    {49, 1, "knife", "kitchen", 78, -1},
    {50, 1, "spoon", "kitchen", 62, -1},
    {51, 1, "bowl", "kitchen", 140, 0},
    {52, 1, "banana", "food", 94, 0},
    {53, 1, "apple", "food", 59, -1},
    {54, 1, "sandwich", "food", 44, 0},
    {55, 1, "orange", "food", 64, -1},
    {56, 1, "broccoli", "food", 73, 0},
    {57, 1, "carrot", "food", 78, -1},
    {58, 1, "hot dog", "food", 29, 0},
    {59, 1, "pizza", "food", 58, 1},
    {60, 1, "donut", "food", 72, -1},
    {61, 1, "cake", "food", 64, 0},
    {62, 1, "chair", "furniture", 383, 0},
    {63, 1, "couch", "furniture", 58, 1},
    {64, 1, "potted plant", "furniture", 86, 0},
    {65, 1, "bed", "furniture", 42, 1},
    {67, 1, "dining table", "furniture", 157, 1},
    {70, 1, "toilet", "furniture", 42, 1},
    {72, 1, "tv", "electronic", 58, 0},
    {73, 1, "laptop", "electronic", 50, 0},
    {74, 1, "mouse", "electronic", 23, -1},
    {75, 1, "remote", "electronic", 57, -1},
    {76, 1, "keyboard", "electronic", 29, 0},
    {77, 1, "cell phone", "electronic", 64, -1},
    {78, 1, "microwave", "appliance", 17, 0},
    {79, 1, "oven", "appliance", 33, 1},
    {80, 1, "toaster", "appliance", 2, 0},
    {81, 1, "sink", "appliance", 56, 0},
    {82, 1, "refrigerator", "appliance", 26, 1},
    {84, 1, "book", "indoor", 241, -1},
    {85, 1, "clock", "indoor", 63, -1},
    {86, 1, "vase", "indoor", 66, -1},
    {87, 1, "scissors", "indoor", 15, -1},
    {88, 1, "teddy bear", "indoor", 47, 0},
    {89, 1, "hair drier", "indoor", 2, -1},
    {90, 1, "toothbrush", "indoor", 19, -1},
    {92, 0, "banner", "textile", 15, 0},
    {93, 0, "blanket", "textile", 10, 0},
    {95, 0, "bridge", "building", 10, 0},
    {100, 0, "cardboard", "raw-material", 10, 0},
    {107, 0, "counter", "furniture-stuff", 30, 0},
    {109, 0, "curtain", "textile", 30, 0},
    {112, 0, "door-stuff", "furniture-stuff", 50, 0},
    {118, 0, "floor-wood", "floor", 40, 0},
    {119, 0, "flower", "plant", 15, 0},
    {122, 0, "fruit", "food-stuff", 10, 0},
    {125, 0, "gravel", "ground", 10, 0},
    {128, 0, "house", "building", 30, 0},
    {130, 0, "light", "furniture-stuff", 40, 0},
    {133, 0, "mirror-stuff", "furniture-stuff", 15, 0},
    {138, 0, "net", "structural", 15, 0},
    {141, 0, "pillow", "textile", 20, 0},
    {144, 0, "platform", "ground", 20, 0},
    {145, 0, "playingfield", "ground", 40, 0},
    {147, 0, "railroad", "ground", 20, 0},
    {148, 0, "river", "water", 10, 0},
    {149, 0, "road", "ground", 130, 0},
    {151, 0, "roof", "building", 20, 0},
    {154, 0, "sand", "ground", 30, 0},
    {155, 0, "sea", "water", 50, 0},
    {156, 0, "shelf", "furniture-stuff", 30, 0},
    {159, 0, "snow", "ground", 40, 0},
    {161, 0, "stairs", "furniture-stuff", 10, 0},
    {166, 0, "tent", "building", 5, 0},
    {168, 0, "towel", "textile", 10, 0},
    {171, 0, "wall-brick", "wall", 20, 0},
    {175, 0, "wall-stone", "wall", 10, 0},
    {176, 0, "wall-tile", "wall", 25, 0},
    {177, 0, "wall-wood", "wall", 15, 0},
    {178, 0, "water-other", "water", 30, 0},
    {180, 0, "window-blind", "window", 15, 0},
    {181, 0, "window-other", "window", 90, 0},
    {184, 0, "tree-merged", "plant", 250, 0},
    {185, 0, "fence-merged", "structural", 100, 0},
    {186, 0, "ceiling-merged", "ceiling", 100, 0},
    {187, 0, "sky-other-merged", "sky", 300, 0},
    {188, 0, "cabinet-merged", "furniture-stuff", 50, 0},
    {189, 0, "table-merged", "furniture-stuff", 150, 0},
    {190, 0, "floor-other-merged", "floor", 120, 0},
    {191, 0, "pavement-merged", "ground", 150, 0},
    {192, 0, "mountain-merged", "solid", 40, 0},
    {193, 0, "grass-merged", "plant", 200, 0},
    {194, 0, "dirt-merged", "ground", 80, 0},
    {195, 0, "paper-merged", "raw-material", 40, 0},
    {196, 0, "food-other-merged", "food-stuff", 30, 0},
    {197, 0, "building-other-merged", "building", 250, 0},
    {198, 0, "rock-merged", "solid", 40, 0},
    {199, 0, "wall-other-merged", "wall", 350, 0},
    {200, 0, "rug-merged", "textile", 20, 0},
};

size_t synth_category_count(void) { return N_THINGS + N_STUFF; }

const synth_category_info *synth_category_at(size_t index) {
    return index < N_THINGS + N_STUFF ? &categories[index] : NULL;
}

/* The ids increase through the table, so a binary search finds one. */
int synth_category_index(int32_t id) {
    size_t lo = 0, hi = N_THINGS + N_STUFF;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (categories[mid].id < id)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < N_THINGS + N_STUFF && categories[lo].id == id ? (int)lo : -1;
}

int32_t synth_category(size_t index, int *isthing, char *name, size_t name_len) {
    const synth_category_info *c = synth_category_at(index);
    if (!c) {
        *isthing = 0;
        snprintf(name, name_len, "%s", "");
        return -1;
    }
    *isthing = c->isthing;
    snprintf(name, name_len, "%s", c->name);
    return c->id;
}

/* Things come first in the table, stuff after them. */
static size_t kind_first(int isthing) { return isthing ? 0 : N_THINGS; }
static size_t kind_end(int isthing) { return isthing ? N_THINGS : N_THINGS + N_STUFF; }

int synth_draw_category(uint64_t u, int isthing) {
    uint64_t total = 0;
    for (size_t i = kind_first(isthing); i < kind_end(isthing); i++)
        total += categories[i].frequency;
    uint64_t pick = u % total;
    size_t i = kind_first(isthing);
    for (; pick >= categories[i].frequency; i++)
        pick -= categories[i].frequency;
    return (int)i;
}

static int related(size_t a, size_t b) {
    return a != b && categories[a].isthing == categories[b].isthing &&
           strcmp(categories[a].supercategory, categories[b].supercategory) == 0;
}

int synth_draw_related(uint64_t u, int index) {
    size_t n = 0, self = (size_t)index;
    for (size_t i = 0; i < N_THINGS + N_STUFF; i++)
        n += (size_t)related(self, i);
    if (n == 0)
        return index;
    size_t pick = (size_t)(u % n);
    for (size_t i = 0; i < N_THINGS + N_STUFF; i++)
        if (related(self, i) && pick-- == 0)
            return (int)i;
    return index;
}
