#!/usr/bin/env python3
"""rouge-score 0.1.2 and sacrebleu 2.4.3 on fixtures/text_pairs.jsonl, for test_eval_text_metrics.cpp.

Usage:  <venv>/bin/python tests/eval/make_text_reference.py OUT_DIR   -> OUT_DIR/text_reference.json
  pairs[i]: {"rougeL": RougeScorer(["rougeL"], use_stemmer=True).score(ref, pred)["rougeL"].fmeasure,
             "ref_tokens": the scorer's tokens of ref, "tok13a": Tokenizer13a()(ref)}
  corpus: corpus_bleu(preds, [refs]) (score, counts, totals, precisions, bp, sys_len, ref_len), on the whole
          fixture and on chunks of 10 pairs (short corpora, where smoothing and brevity matter)
  stems: {word: PorterStemmer().stem(word)} for every lowercase ASCII word of the fixture and a list of
         words that exercise each step of the algorithm
"""
import json
import os
import re
import sys

import sacrebleu
from nltk.stem import porter
from rouge_score import rouge_scorer
from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

HERE = os.path.dirname(os.path.abspath(__file__))
STEM_WORDS = ("caresses ponies ties caress cats feed agreed plastered bled motoring sing conflated troubled "
              "sized hopping tanned falling hissing fizzed failing filing happy sky relational conditional "
              "rational valenci hesitanci digitizer conformabli radicalli differentli vileli analogousli "
              "vietnamization predication operator feudalism decisiveness hopefulness callousness formaliti "
              "sensitiviti sensibiliti triplicate formative formalize electriciti electrical hopeful goodness "
              "revival allowance inference airliner gyroscopic adjustable defensible irritant replacement "
              "adjustment dependent adoption homologou communism activate angulariti homologous effective "
              "bowdlerize probate rate cease controll roll dying lying tying news innings outings cannings "
              "howe proceed exceed succeed skies died cried spied enjoy spy fly try generically analogies "
              "archaeology theology a as is on by at ies ied eed yyy syzygy toy trouble oats trees ivy "
              "troubles private oaten orrery tree by generalizations").split()


def main(argv):
    out_dir = argv[1]
    os.makedirs(out_dir, exist_ok=True)
    pairs = [json.loads(l) for l in open(os.path.join(HERE, "fixtures", "text_pairs.jsonl"), encoding="utf-8")]
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    tok = Tokenizer13a()
    preds = [p["prediction"] for p in pairs]
    refs = [p["reference"] for p in pairs]
    out_pairs = []
    for p in pairs:
        out_pairs.append({"rougeL": scorer.score(p["reference"], p["prediction"])["rougeL"].fmeasure,
                          "ref_tokens": scorer._tokenizer.tokenize(p["reference"]),
                          "tok13a": tok(p["reference"].rstrip())})

    def bleu(h, r):
        b = sacrebleu.corpus_bleu(h, [r])
        return {"score": b.score, "counts": list(b.counts), "totals": list(b.totals),
                "precisions": list(b.precisions), "bp": b.bp, "sys_len": b.sys_len, "ref_len": b.ref_len}

    corpus = [{"begin": 0, "end": len(pairs), **bleu(preds, refs)}]
    for b in range(0, len(pairs), 10):
        corpus.append({"begin": b, "end": b + 10, **bleu(preds[b:b + 10], refs[b:b + 10])})
    stemmer = porter.PorterStemmer()
    words = set(STEM_WORDS)
    for p in pairs:
        for t in re.split(r"[^a-z0-9]+", (p["prediction"] + " " + p["reference"]).lower()):
            if t:
                words.add(t)
    stems = {w: stemmer.stem(w) for w in sorted(words)}
    with open(os.path.join(out_dir, "text_reference.json"), "w", encoding="utf-8") as f:
        json.dump({"pairs": out_pairs, "corpus": corpus, "stems": stems,
                   "versions": {"sacrebleu": sacrebleu.__version__}}, f, ensure_ascii=False)
    print(f"{len(pairs)} pairs, {len(stems)} stems, corpus BLEU {corpus[0]['score']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
