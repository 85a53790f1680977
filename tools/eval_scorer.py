#!/usr/bin/env python3
"""Optional essay metrics for iris-eval text, through the well-kept Python implementations.

Usage:  python3 tools/eval_scorer.py IN.json OUT.json
  IN:  {"predictions": [...], "references": [...], "semscore_model": DIR or ""}
  OUT: {"meteor": mean nltk.translate.meteor_score.meteor_score([ref tokens], pred tokens) | null,
        "meteor_unavailable": why (only when null),
        "semscore": mean cosine similarity of sentence-transformers embeddings of (pred, ref) | null,
        "semscore_unavailable": why (only when null)}
METEOR needs nltk and its WordNet data (nltk.download("wordnet") where a network is allowed); tokens are
str.split() of each text. SemScore (Aynetdinov & Akbik 2024) needs sentence-transformers and a local model
directory (the paper uses all-mpnet-base-v2); nothing is downloaded here. A metric that cannot be computed
is reported unavailable with the reason, never estimated.
"""
import json
import sys


def meteor(preds, refs):
    try:
        from nltk.translate.meteor_score import meteor_score
        from nltk.corpus import wordnet
        wordnet.ensure_loaded()
    except LookupError:
        return None, "nltk's WordNet data is not installed (nltk.download('wordnet') where a network is allowed)"
    except Exception as e:  # noqa: BLE001 - report any reason
        return None, f"nltk is not installed ({type(e).__name__})"
    scores = [meteor_score([r.split()], p.split()) for p, r in zip(preds, refs)]
    return sum(scores) / len(scores), None


def semscore(preds, refs, model_dir):
    if not model_dir:
        return None, "no SemScore model given (--semscore-model DIR)"
    try:
        from sentence_transformers import SentenceTransformer, util
    except Exception as e:  # noqa: BLE001
        return None, f"sentence-transformers is not installed ({type(e).__name__})"
    model = SentenceTransformer(model_dir, device="cpu")
    a = model.encode(preds, convert_to_tensor=True, normalize_embeddings=True)
    b = model.encode(refs, convert_to_tensor=True, normalize_embeddings=True)
    sims = util.pairwise_cos_sim(a, b)
    return float(sims.mean()), None


def main(argv):
    data = json.load(open(argv[1], encoding="utf-8"))
    preds, refs = data["predictions"], data["references"]
    out = {}
    for name, (value, why) in (("meteor", meteor(preds, refs)),
                               ("semscore", semscore(preds, refs, data.get("semscore_model", "")))):
        out[name] = value
        if value is None:
            out[name + "_unavailable"] = why
    json.dump(out, open(argv[2], "w", encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
