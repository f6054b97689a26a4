#!/usr/bin/env python3
"""Build notebooks-data/digits.h5, the bundled multi-task dataset of TaskInterference.

Usage:
    /opt/refvenv/bin/python notebooks-data/build_digits.py /work/shared/data/digits.csv.gz notebooks-data/digits.h5

Input: the UCI "Optical Recognition of Handwritten Digits" test set (Alpaydin & Kaynak 1998, CC BY 4.0),
1797 rows of 64 pixels (8x8, values 0..16) followed by the label 0..9.

Output: one HDF5 file (schema in notebooks-data/README.md) with images, labels, class names, one caption
per image grounded in measured pixel attributes, a generated text corpus about numbers for masked
language modelling, fixed seeded train/validation splits and the word-level vocabulary (5 specials last).

Deterministic: the same input and SEED give the same arrays (numpy's PCG64 seeded generator; no clock,
no dictionary-order dependence). HDF5 files are written with libver ('earliest', 'v108') and only the
deflate filter, so Debian's libhdf5 1.10 reads them.
"""

import gzip
import os
import sys

import h5py
import numpy as np

SEED = 20240611
FORMAT = "task-interference/dataset"
VERSION = 1
VALIDATION_FRACTION = 0.2       # images: stratified, per class
CORPUS_HELD_OUT_FRACTION = 0.1  # corpus: fraction of number combinations held out per sentence family

SOURCE = ("UCI Machine Learning Repository: Optical Recognition of Handwritten Digits "
          "(test set as distributed with scikit-learn, 1797 images of 8x8 pixels, values 0..16)")
LICENSE = "CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/)"
CITATION = ("E. Alpaydin and C. Kaynak. Optical Recognition of Handwritten Digits. UCI Machine Learning "
            "Repository, 1998. https://doi.org/10.24432/C50P49")
NORMALISATION = "x / 8 - 1"  # pixel 0..16 -> [-1, 1]

SPECIALS = ["<|startoftext|>", "<|endoftext|>", "<|mask|>", "<|gen|>", "<|spe|>"]

NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
                "eighteen", "nineteen", "twenty"]
MAX_NUMBER = 20

INK_WORDS = ["light", "medium", "heavy"]
WIDTH_WORDS = ["narrow", "wide"]
SLANT_ADJECTIVES = ["left-leaning", "upright", "right-leaning"]
SLANT_PARTICIPLES = ["leaning left", "standing upright", "leaning right"]
SLANT_VERBS = ["leans left", "stands upright", "leans right"]

# Caption templates; every caption names the digit and all three measured attributes.
CAPTION_TEMPLATES = [
    "a {ink} {slant_adj} {width} {digit}",
    "a {ink} {width} {digit} {slant_part}",
    "the digit {digit} is {width} and {ink} and {slant_verb}",
    "a {width} {digit} drawn with {ink} strokes that {slant_verb}",
]


# --------------------------------------------------------------------------------------------------
# Images and their measured attributes

def read_digits(path):
    with gzip.open(path, "rt") as f:
        rows = np.loadtxt(f, delimiter=",", dtype=np.int64)
    if rows.ndim != 2 or rows.shape[1] != 65:
        raise SystemExit(f"{path}: expected 65 comma-separated columns, found shape {rows.shape}")
    pixels = rows[:, :64]
    labels = rows[:, 64]
    if pixels.min() < 0 or pixels.max() > 16 or labels.min() < 0 or labels.max() > 9:
        raise SystemExit(f"{path}: pixels must be 0..16 and labels 0..9")
    return pixels.reshape(-1, 8, 8).astype(np.uint8), labels


def measure(images):
    """Ink mass (sum of pixels), slant (shear -mu11/mu02, > 0 leans right) and width (sqrt(mu20)).

    Coordinates: x = column, y = row (downwards); moments are intensity-weighted central moments.
    A stroke whose top is to the right of its bottom has x falling as y grows, so mu11 < 0: the sign
    is flipped so that a positive slant means "leans right".
    """
    x = images.astype(np.float64)
    ys, xs = np.mgrid[0:8, 0:8]
    mass = x.sum(axis=(1, 2))
    cx = (x * xs).sum(axis=(1, 2)) / mass
    cy = (x * ys).sum(axis=(1, 2)) / mass
    dx = xs[None] - cx[:, None, None]
    dy = ys[None] - cy[:, None, None]
    mu11 = (x * dx * dy).sum(axis=(1, 2)) / mass
    mu02 = (x * dy * dy).sum(axis=(1, 2)) / mass
    mu20 = (x * dx * dx).sum(axis=(1, 2)) / mass
    return mass, -mu11 / mu02, np.sqrt(mu20)


def bins_within_class(values, labels, n_bins):
    """Bin index 0..n_bins-1 by quantiles computed inside each class (ties broken by row order).

    Per-class quantiles because the raw measures depend on the digit (a seven leans right, a one is
    narrow): a "heavy one" is heavy for a one. Each class thus gets all bins in near-equal numbers.
    """
    out = np.zeros(len(values), dtype=np.int64)
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        order = rows[np.argsort(values[rows], kind="stable")]
        for rank, row in enumerate(order):
            out[row] = rank * n_bins // len(order)
    return out


def make_captions(labels, ink, slant, width, rng):
    templates = rng.integers(0, len(CAPTION_TEMPLATES), size=len(labels))
    captions = []
    for i, label in enumerate(labels):
        captions.append(CAPTION_TEMPLATES[templates[i]].format(
            digit=NUMBER_WORDS[label], ink=INK_WORDS[ink[i]], width=WIDTH_WORDS[width[i]],
            slant_adj=SLANT_ADJECTIVES[slant[i]], slant_part=SLANT_PARTICIPLES[slant[i]],
            slant_verb=SLANT_VERBS[slant[i]]))
    return captions, templates.astype(np.int64)


def stratified_split(labels, rng):
    train, validation = [], []
    for c in range(10):
        rows = np.flatnonzero(labels == c)
        rows = rows[rng.permutation(len(rows))]
        n_val = int(round(VALIDATION_FRACTION * len(rows)))
        validation.extend(rows[:n_val])
        train.extend(rows[n_val:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(validation, dtype=np.int64))


# --------------------------------------------------------------------------------------------------
# Text corpus: sentence families about the numbers zero..twenty

def w(n):
    return NUMBER_WORDS[n]


def article(n):
    return "an" if w(n)[0] in "aeiou" else "a"


def corpus_families():
    """Yield (family, key, [sentences]) — all surface forms of one fact share a key.

    The validation split holds out whole keys (number combinations), so a validation sentence is never
    a paraphrase of a training sentence about the same numbers within its family.
    """
    N = MAX_NUMBER
    for a in range(N + 1):
        parity = "even" if a % 2 == 0 else "odd"
        yield "parity", (a,), [f"{w(a)} is {parity}", f"{w(a)} is {article(a)} {parity} number",
                               f"the number {w(a)} is {parity}"]
        if a < N:
            yield "successor", (a,), [f"the successor of {w(a)} is {w(a + 1)}",
                                      f"{w(a + 1)} comes after {w(a)}",
                                      f"{w(a)} comes before {w(a + 1)}",
                                      f"the number after {w(a)} is {w(a + 1)}",
                                      f"the predecessor of {w(a + 1)} is {w(a)}",
                                      f"the number before {w(a + 1)} is {w(a)}"]
        if 2 * a <= N:
            yield "double", (a,), [f"twice {w(a)} is {w(2 * a)}", f"half of {w(2 * a)} is {w(a)}",
                                   f"{w(a)} plus {w(a)} is {w(2 * a)} which is even"]
    for a in range(N + 1):
        for b in range(N + 1):
            if a + b <= N:
                s = a + b
                parity = "even" if s % 2 == 0 else "odd"
                yield "sum", (a, b), [f"{w(a)} plus {w(b)} is {w(s)}",
                                      f"{w(a)} plus {w(b)} equals {w(s)}",
                                      f"the sum of {w(a)} and {w(b)} is {w(s)}",
                                      f"{w(a)} plus {w(b)} is {w(s)} and {w(s)} is {parity}"]
            if a >= b:
                d = a - b
                yield "difference", (a, b), [f"{w(a)} minus {w(b)} is {w(d)}",
                                             f"{w(a)} minus {w(b)} equals {w(d)}",
                                             f"the difference between {w(a)} and {w(b)} is {w(d)}"]
            if 2 <= a and 2 <= b and a * b <= N:
                yield "product", (a, b), [f"{w(a)} times {w(b)} is {w(a * b)}",
                                          f"{w(a)} times {w(b)} equals {w(a * b)}"]
            if a > b:
                yield "order", (a, b), [f"{w(a)} is greater than {w(b)}",
                                        f"{w(b)} is less than {w(a)}",
                                        f"{w(a)} is larger than {w(b)}",
                                        f"{w(b)} is smaller than {w(a)}",
                                        f"{w(a)} is more than {w(b)}"]
            if a == b:
                yield "equal", (a,), [f"{w(a)} is equal to {w(a)}"]
    for a in range(N + 1):
        for c in range(a + 2, N + 1):
            mids = [b for b in range(a + 1, c)]
            if len(mids) <= 3:
                for b in mids:
                    yield "between", (a, b, c), [f"{w(b)} is between {w(a)} and {w(c)}",
                                                 f"{w(a)} {w(b)} and {w(c)} are in increasing order",
                                                 f"{w(c)} {w(b)} and {w(a)} are in decreasing order"]


def make_corpus(rng):
    sentences, families, keys = [], [], []
    for family, key, forms in corpus_families():
        for text in forms:
            sentences.append(text)
            families.append(family)
            keys.append((family,) + key)
    # Deduplicate while keeping first occurrence order (the same sentence can come from two keys).
    seen = set()
    keep = []
    for i, text in enumerate(sentences):
        if text not in seen:
            seen.add(text)
            keep.append(i)
    sentences = [sentences[i] for i in keep]
    families = [families[i] for i in keep]
    keys = [keys[i] for i in keep]
    # Held-out combinations: per family, a seeded random 10 % of the keys go to validation.
    family_names = sorted(set(families))
    held_out = set()
    for family in family_names:
        fam_keys = sorted({k for k, f in zip(keys, families) if f == family})
        n_val = max(1, int(round(CORPUS_HELD_OUT_FRACTION * len(fam_keys))))
        for j in rng.permutation(len(fam_keys))[:n_val]:
            held_out.add(fam_keys[j])
    is_val = np.array([k in held_out for k in keys])
    family_ids = np.array([family_names.index(f) for f in families], dtype=np.int64)
    return sentences, family_ids, family_names, np.flatnonzero(~is_val), np.flatnonzero(is_val)


# --------------------------------------------------------------------------------------------------
# Vocabulary and tokenisation (word level: lower-case, split on spaces)

def build_vocabulary(texts):
    words = sorted({token for text in texts for token in text.split()})
    for token in words:
        if token != token.lower() or token in SPECIALS:
            raise SystemExit(f"bad vocabulary word {token!r}")
    return words + SPECIALS


def tokenise(texts, words):
    """Token ids padded with -1 to the longest sequence; every sequence ends with EOT (id V-4)."""
    index = {word: i for i, word in enumerate(words)}
    eot = len(words) - 4
    seqs = [[index[t] for t in text.split()] + [eot] for text in texts]
    width = max(len(s) for s in seqs)
    tokens = np.full((len(seqs), width), -1, dtype=np.int64)
    for i, s in enumerate(seqs):
        tokens[i, :len(s)] = s
    return tokens, np.array([len(s) for s in seqs], dtype=np.int64)


# --------------------------------------------------------------------------------------------------

def write(path, arrays, string_arrays, attrs):
    tmp = path + ".tmp"
    with h5py.File(tmp, "w", libver=("earliest", "v108"), track_order=False) as f:
        for key, value in attrs.items():
            f.attrs[key] = value
        for name, (value, dattrs) in arrays.items():
            compress = value.size >= 1024
            d = f.create_dataset(name, data=value, compression="gzip" if compress else None,
                                 compression_opts=9 if compress else None,
                                 shuffle=False, chunks=True if compress else None)
            for key, val in dattrs.items():
                d.attrs[key] = val
        string_type = h5py.string_dtype(encoding="utf-8")
        for name, values in string_arrays.items():
            f.create_dataset(name, data=np.array(values, dtype=object), dtype=string_type)
    os.replace(tmp, path)


def main(argv):
    if len(argv) != 3:
        raise SystemExit(f"usage: {argv[0]} DIGITS_CSV_GZ OUTPUT_H5")
    source_path, output_path = argv[1], argv[2]
    rng = np.random.Generator(np.random.PCG64(SEED))

    images, labels = read_digits(source_path)
    mass, shear, spread = measure(images)
    ink = bins_within_class(mass, labels, 3)
    slant = bins_within_class(shear, labels, 3)
    width = bins_within_class(spread, labels, 2)
    captions, templates = make_captions(labels, ink, slant, width, rng)
    train, validation = stratified_split(labels, rng)
    sentences, corpus_family, family_names, corpus_train, corpus_validation = make_corpus(rng)
    class_names = NUMBER_WORDS[:10]

    words = build_vocabulary(captions + sentences + class_names)
    caption_tokens, caption_lengths = tokenise(captions, words)
    corpus_tokens, corpus_lengths = tokenise(sentences, words)
    class_tokens, class_lengths = tokenise(class_names, words)

    int_attrs = {"padding": -1, "ends_with": "<|endoftext|>"}
    arrays = {
        "images": (images, {"normalisation": NORMALISATION, "layout": "[N, row, column]",
                            "pixel_range": np.array([0, 16], dtype=np.int64)}),
        "labels": (labels.astype(np.int64), {}),
        "attributes/ink": (ink, {"values": "0 light, 1 medium, 2 heavy (tertiles of ink_mass within the class)"}),
        "attributes/slant": (slant, {"values": "0 left, 1 upright, 2 right (tertiles of slant within the class)"}),
        "attributes/width": (width, {"values": "0 narrow, 1 wide (halves of width within the class)"}),
        "attributes/ink_mass": (mass.astype(np.float32), {"meaning": "sum of the 64 pixels"}),
        "attributes/slant_shear": (shear.astype(np.float32), {"meaning": "-mu11/mu02, > 0 leans right"}),
        "attributes/width_spread": (spread.astype(np.float32), {"meaning": "sqrt(mu20), columns"}),
        "captions/tokens": (caption_tokens, int_attrs),
        "captions/lengths": (caption_lengths, {}),
        "captions/template": (templates, {}),
        "class_names/tokens": (class_tokens, int_attrs),
        "class_names/lengths": (class_lengths, {}),
        "corpus/tokens": (corpus_tokens, int_attrs),
        "corpus/lengths": (corpus_lengths, {}),
        "corpus/family": (corpus_family, {}),
        "splits/images/train": (train, {}),
        "splits/images/validation": (validation, {}),
        "splits/corpus/train": (corpus_train.astype(np.int64), {}),
        "splits/corpus/validation": (corpus_validation.astype(np.int64), {}),
    }
    strings = {
        "captions/text": captions,
        "class_names/text": class_names,
        "corpus/text": sentences,
        "corpus/families": family_names,
        "captions/templates": CAPTION_TEMPLATES,
        "vocabulary/words": words,
    }
    attrs = {
        "format": FORMAT, "version": np.int64(VERSION), "seed": np.int64(SEED),
        "source": SOURCE, "license": LICENSE, "citation": CITATION,
        "vocabulary": "\n".join(words),
        "image_size": np.int64(8), "channels": np.int64(1),
        "generator": "notebooks-data/build_digits.py",
    }
    write(output_path, arrays, strings, attrs)
    print(f"{output_path}: {len(labels)} images (train {len(train)}, validation {len(validation)}), "
          f"{len(sentences)} sentences (train {len(corpus_train)}, validation {len(corpus_validation)}), "
          f"V = {len(words)}")


if __name__ == "__main__":
    main(sys.argv)
