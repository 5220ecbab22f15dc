#!/usr/bin/env python3
"""upsnet_heads_compare: what tests/upsnet_heads_tool wrote (OUT) against an UPSNet answer-key
folder (KEYS), stage by stage, with the tolerances of shared/reference/upsnet/README.md
section 5: continuous tensors rel L2 <= 1e-4, probabilities abs <= 1e-3, proposals and
detections matched as sets (box <= 0.01 px, score <= 2e-4, same labels and count), label
maps exact where the key's margin is >= 1e-3, final segments the same (category,
instance) with pixel IoU >= 0.99.

usage: upsnet_heads_compare.py KEYS OUT [-v]
Prints FAIL lines, with -v one INFO line per stage (its worst errors), then
'N passed, N failed'. numpy only."""
import json
import os
import sys

import numpy as np

KEYS, OUT = sys.argv[1], sys.argv[2]
VERBOSE = '-v' in sys.argv[3:]
passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print('FAIL: ' + what)


def info(what):
    if VERBOSE:
        print('INFO: ' + what)


def key(name):
    return np.load(os.path.join(KEYS, name + '.npy'))


def out(name):
    path = os.path.join(OUT, name + '.npy')
    if not os.path.exists(path):
        check(False, name + ': not written')
        return None
    return np.load(path)


def rel_l2(a, b):
    a, b = a.astype(np.float64), b.astype(np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30))


def continuous(name, got, want, rel=1e-4, prob=False):
    if got is None:
        return
    if got.shape != want.shape:
        check(False, '%s: shape %s, key %s' % (name, got.shape, want.shape))
        return
    r = rel_l2(got, want)
    m = float(np.max(np.abs(got.astype(np.float64) - want))) if got.size else 0.0
    info('%s: rel L2 %.3g, max abs %.3g' % (name, r, m))
    check(r <= rel, '%s: rel L2 %.3g > %g (max abs %.3g)' % (name, r, rel, m))
    if prob:
        check(m <= 1e-3, '%s: max abs %.3g > 1e-3' % (name, m))


def match_sets(name, gb, gs, gl, kb, ks, kl):
    """Each key item to one of ours of the same label, box <= 0.01 px, score <= 2e-4;
    returns perm (key index -> ours) or None."""
    if gb is None:
        return None
    if len(gb) != len(kb):
        check(False, '%s: %d items, key %d' % (name, len(gb), len(kb)))
        return None
    perm = -np.ones(len(kb), dtype=np.int64)
    used = np.zeros(len(gb), dtype=bool)
    worst_box = worst_score = 0.0
    bad = 0
    for i in range(len(kb)):
        d = np.max(np.abs(gb.astype(np.float64) - kb[i]), axis=1)
        d[used] = np.inf
        if gl is not None:
            d[gl != kl[i]] = np.inf
        j = int(np.argmin(d)) if len(d) else -1
        if j < 0 or not np.isfinite(d[j]) or d[j] > 0.01 or abs(float(gs[j]) - float(ks[i])) > 2e-4:
            bad += 1
            continue
        used[j] = True
        perm[i] = j
        worst_box = max(worst_box, float(d[j]))
        worst_score = max(worst_score, abs(float(gs[j]) - float(ks[i])))
    info('%s: %d items, box max %.3g px, score max %.3g, same order: %s'
         % (name, len(kb), worst_box, worst_score, bool(np.all(perm == np.arange(len(kb))))))
    check(bad == 0, '%s: %d of %d key items not matched' % (name, bad, len(kb)))
    return perm if bad == 0 else None


# ---- RPN maps, proposals
for l in range(2, 7):
    continuous('rpn_cls_prob_p%d' % l, out('rpn_cls_prob_p%d' % l), key('rpn_cls_prob_p%d' % l), prob=True)
    continuous('rpn_bbox_pred_p%d' % l, out('rpn_bbox_pred_p%d' % l), key('rpn_bbox_pred_p%d' % l))
rois, scores = out('rpn_rois'), out('rpn_roi_scores')
match_sets('proposals', rois, scores, None, key('rpn_rois'), key('rpn_roi_scores'), None)
if scores is not None:
    check(np.all(np.diff(scores) <= 0), 'proposals: not in descending score')

# ---- RoIAlign probe, box head, detections, masks
continuous('roi_probe_feats', out('roi_probe_feats'), key('roi_probe_feats'))
continuous('rcnn_cls_prob', out('rcnn_cls_prob'), key('rcnn_cls_prob'), prob=True)
perm = match_sets('detections', out('det_boxes_resized'), out('det_scores'), out('det_labels'),
                  key('det_boxes_resized'), key('det_scores'), key('det_labels'))
if perm is not None:
    db, lab = out('det_boxes'), out('det_labels')
    m = float(np.max(np.abs(db[perm] - key('det_boxes')))) if len(perm) else 0.0
    info('det_boxes (image pixels): max abs %.3g' % m)
    check(m <= 0.02, 'det_boxes: max abs %.3g > 0.02 px' % m)
    check(np.array_equal(lab, key('det_labels')), 'detections: not in the key\'s order (class by class)')
    mp = out('det_mask_probs')
    continuous('det_mask_probs', mp[perm], key('det_mask_probs'), prob=True)
continuous('det_mask_probs_fed', out('det_mask_probs_fed'), key('det_mask_probs'), prob=True)

# ---- panoptic head
cperm = match_sets('pan_candidates', out('pan_det_boxes_resized'), out('pan_det_scores'), out('pan_det_labels'),
                   key('pan_det_boxes_resized'), key('pan_det_scores'), key('pan_det_labels'))
continuous('pan_mask_logits_fed', out('pan_mask_logits_fed'), key('pan_mask_logits'))
if cperm is not None:
    continuous('pan_mask_logits', out('pan_mask_logits')[cperm], key('pan_mask_logits'))
    inv = np.empty_like(cperm)
    inv[cperm] = np.arange(len(cperm))
    keep = out('pan_keep')
    kkeep = key('pan_keep')
    check(keep is not None and np.array_equal(inv[keep], kkeep),
          'pan_keep: %s, key %s' % (None if keep is None else inv[keep].tolist(), kkeep.tolist()))
    check(np.array_equal(out('pan_cls_inds'), key('pan_cls_inds')), 'pan_cls_inds differ')
    cp, kcp = out('pan_cls_probs'), key('pan_cls_probs')
    check(cp.shape == kcp.shape and np.max(np.abs(cp - kcp), initial=0) <= 2e-4, 'pan_cls_probs differ')

margin = key('pan_margin')
labels, klabels = out('pan_labels'), key('pan_labels')
if labels is not None:
    diff = labels != klabels
    firm = margin >= 1e-3
    info('pan_labels: %d pixels differ (%d with margin >= 1e-3; %d pixels below it)'
         % (int(diff.sum()), int((diff & firm).sum()), int((~firm).sum())))
    check(not np.any(diff & firm), 'pan_labels: %d pixels with margin >= 1e-3 differ' % int((diff & firm).sum()))
    check(int(diff.sum()) <= 36, 'pan_labels: %d pixels differ' % int(diff.sum()))

kimg = key('pan_labels_image')
img = out('pan_labels_image')
if img is not None:
    check(img.shape == kimg.shape, 'pan_labels_image: shape %s, key %s' % (img.shape, kimg.shape))
    if img.shape == kimg.shape:
        n = int((img != kimg).sum())
        info('pan_labels_image: %d pixels differ' % n)
        check(n <= 36 * 4, 'pan_labels_image: %d pixels differ' % n)

k2 = key('panoptic_2ch')
g2 = out('panoptic_2ch')
if g2 is not None and g2.shape == k2.shape:
    n = int(np.any(g2 != k2, axis=2).sum())
    info('panoptic_2ch: %d of %d pixels differ' % (n, k2.shape[0] * k2.shape[1]))
    check(n <= max(4, int(0.00005 * k2.shape[0] * k2.shape[1])), 'panoptic_2ch: %d pixels differ' % n)
    segs = json.load(open(os.path.join(KEYS, 'panoptic_segments.json')))['segments']
    ours = out('segments')
    found = 0
    for s in segs:
        cls, ins = s['trainid'], s['instance']
        kmask = (k2[..., 0] == cls) & (k2[..., 1] == ins)
        gmask = (g2[..., 0] == cls) & (g2[..., 1] == ins)
        iou = (kmask & gmask).sum() / max((kmask | gmask).sum(), 1)
        row = [r for r in ours if r[0] == cls and r[1] == ins]
        ok = iou >= 0.99 and len(row) == 1 and abs(int(row[0][2]) - s['area']) <= 0.01 * s['area'] and \
            np.max(np.abs(np.array(row[0][3:]) - np.array(s['bbox_upsnet']))) <= 1
        found += ok
        check(ok, 'segment class %d instance %d: IoU %.4f, ours %s, key area %d bbox %s'
              % (cls, ins, iou, row, s['area'], s['bbox_upsnet']))
    check(len(ours) == len(segs), 'segments: %d, key %d' % (len(ours), len(segs)))
    info('segments: %d of %d found' % (found, len(segs)))
elif g2 is not None:
    check(False, 'panoptic_2ch: shape %s, key %s' % (g2.shape, k2.shape))

print('%d passed, %d failed' % (passed, failed))
