#!/usr/bin/env python3
"""Writes fixtures/text_pairs.jsonl: 240 (prediction, reference) pairs for the ROUGE-L / BLEU comparison
(check_text_metrics.py). Seeded; run once, the output is committed. The pairs mix ophthalmology sentences
with punctuation (quotes, brackets, hyphens, "&", HTML entities, trailing " ."), numbers (decimals,
ranges like 10-21, 0.01%, 1,000), casing (ALL CAPS, Title Case), Unicode (µm, é, ü, Greek letters, "–",
non-breaking and ideographic spaces, U+0130, the Kelvin sign) and inflected words for the stemmer
(treated, treating, treatments, dying, skies, generalization, controlling, ...), plus empty and
one-word predictions."""
import json
import os
import random

rng = random.Random(20261208)
WORDS = ("the patient eye retina retinal optic nerve glaucoma cataract cornea corneal lens macula macular "
         "pressure intraocular treated treating treatments treatment injections injected laser lasers vision "
         "visual acuity improved improving improvement worsening detachment detached flashes floaters "
         "angle closure open-angle diabetic retinopathy oedema edema anti-VEGF drops topical steroids "
         "generalization relational conditional hopefulness controlling dying skies news innings happy "
         "agreed feed motoring sized hopping falling hissing fizzed failing filing ponies caresses cats "
         "effective adjustable irritant replacement adoption activate bowdlerize electrical goodness "
         "formalize triplicate sensitivity probate ceased rolled controller").split()
EXTRAS = ["µm", "café", "Müller", "α-agonist", "β-blocker", "10–21", "Behçet's", "naïve", "İstanbul",
          "\u212aelvin", "ŞEKER", "东京", "Ωmega", "façade", "résumé"]
NUMBERS = ["10-21", "0.01%", "1,000", "3.5", "2024", "40", "7", "95%", "1.5mm", "20/20", "6/6", "-3.00D"]
PUNCT = [",", ".", ";", ":", "!", "?", " -", "(", ")", "\"", "'", "&", "&amp;", "&quot;", "<", ">", "/", "[", "]"]
SPACES = [" ", " ", " ", " ", "  ", "\u00a0", "\u3000", "\t"]


def sentence(n):
    out = []
    for _ in range(n):
        r = rng.random()
        if r < 0.70:
            w = rng.choice(WORDS)
        elif r < 0.80:
            w = rng.choice(NUMBERS)
        elif r < 0.90:
            w = rng.choice(EXTRAS)
        else:
            w = rng.choice(PUNCT)
        c = rng.random()
        if c < 0.08:
            w = w.upper()
        elif c < 0.2:
            w = w.capitalize()
        out.append(w)
        out.append(rng.choice(SPACES))
    text = "".join(out).strip()
    if rng.random() < 0.5:
        text += rng.choice([".", " .", "!", "?", "...", ""])
    return text


def perturb(ref):
    toks = ref.split(" ")
    ops = rng.randint(0, 6)
    for _ in range(ops):
        k = rng.random()
        if k < 0.3 and len(toks) > 1:
            del toks[rng.randrange(len(toks))]
        elif k < 0.6:
            toks.insert(rng.randrange(len(toks) + 1), rng.choice(WORDS))
        elif k < 0.8 and toks:
            i = rng.randrange(len(toks))
            toks[i] = toks[i].upper() if rng.random() < 0.5 else toks[i].lower()
        elif toks:
            i, j = rng.randrange(len(toks)), rng.randrange(len(toks))
            toks[i], toks[j] = toks[j], toks[i]
    return " ".join(toks)


pairs = []
for i in range(240):
    ref = sentence(rng.randint(4, 30))
    if i % 40 == 7:
        pred = ""
    elif i % 40 == 13:
        pred = rng.choice(WORDS)
    elif i % 40 == 21:
        pred = ref
    elif i % 3 == 0:
        pred = sentence(rng.randint(3, 25))
    else:
        pred = perturb(ref)
    if i % 17 == 5:
        ref = ref + "\n" + sentence(rng.randint(2, 6))  # a line break inside the text
    pairs.append({"prediction": pred, "reference": ref})
out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "text_pairs.jsonl")
with open(out, "w", encoding="utf-8") as f:
    for p in pairs:
        f.write(json.dumps(p, ensure_ascii=False) + "\n")
print(out, len(pairs))
