#!/usr/bin/env python3
"""iris-eval text end to end (ctest eval_text_task): generation through src/infer, scores equal to
rouge-score and sacrebleu on the generated answers, METEOR / SemScore reported unavailable with a reason.

Usage:  <venv>/bin/python tests/eval/check_text_task.py OUT_DIR IRIS_EVAL

A random model's answers share nothing with the sample references, so the check runs twice: first on
data/sample/eval/essays.jsonl, then on the same questions with references made from the first run's
answers (every third word dropped, a word appended): greedy decoding repeats the answers, so the second
run's ROUGE-L and BLEU are far from 0 and must equal RougeScorer(["rougeL"], use_stemmer=True) (mean F1) and
sacrebleu.corpus_bleu on (generated, reference) within 1e-9; bleu_01 = bleu / 100. The scorer runs with this
Python (nltk without its WordNet data, no sentence-transformers model): both reported null with a reason.
"""
import json
import os
import subprocess
import sys

import sacrebleu
from rouge_score import rouge_scorer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eval_models  # noqa: E402


def run(iris, model_dir, inp, out):
    subprocess.run([iris, "text", "--hf", model_dir, "--tokenizer", os.path.join(model_dir, "tokenizer.model"),
                    "--input", inp, "--output", out, "--max-new-tokens", "24", "--scorer", sys.executable,
                    "--batch", "3"], check=True)
    return (json.load(open(os.path.join(out, "summary.json"))),
            [json.loads(l) for l in open(os.path.join(out, "items.jsonl"))])


def main(argv):
    out_dir, iris = argv[1], argv[2]
    os.makedirs(out_dir, exist_ok=True)
    _, _, model_dir = eval_models.build(out_dir, "gqa")
    essays = os.path.join(eval_models.REPO, "data", "sample", "eval", "essays.jsonl")
    _, first = run(iris, model_dir, essays, os.path.join(out_dir, "first"))
    second_in = os.path.join(out_dir, "essays_from_answers.jsonl")
    with open(second_in, "w") as f:
        for item in first:
            words = item["generated"].split()
            ref = " ".join(w for i, w in enumerate(words) if i % 3 != 2) + " retina."
            f.write(json.dumps({"id": item["id"], "question": item["question"], "reference": ref}) + "\n")
    summary, items = run(iris, model_dir, second_in, os.path.join(out_dir, "second"))
    failures = []
    if [i["generated"] for i in items] != [i["generated"] for i in first]:
        failures.append("greedy answers differ between two runs")
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    preds, refs = [i["generated"] for i in items], [i["reference"] for i in items]
    rouge = [scorer.score(r, p)["rougeL"].fmeasure for p, r in zip(preds, refs)]
    bleu = sacrebleu.corpus_bleu(preds, [refs]).score
    expected = {"rougeL": sum(rouge) / len(rouge), "bleu": bleu, "bleu_01": bleu / 100}
    for key, value in expected.items():
        if abs(summary[key] - value) > 1e-9:
            failures.append(f"{key} {summary[key]} vs {value}")
    for i, r in enumerate(rouge):
        if abs(items[i]["rougeL"] - r) > 1e-9:
            failures.append(f"item {i}: rougeL {items[i]['rougeL']} vs {r}")
    if summary["rougeL"] < 0.3 or summary["bleu"] < 10:
        failures.append(f"the second run should overlap its references: {summary}")
    for key in ("meteor", "semscore"):
        if summary.get(key) is not None or not summary.get(key + "_unavailable"):
            failures.append(f"{key}: expected null with a reason, got {summary.get(key)} "
                            f"{summary.get(key + '_unavailable')}")
    print(json.dumps({k: summary[k] for k in ("rougeL", "bleu", "bleu_01", "meteor_unavailable",
                                              "semscore_unavailable")}))
    for msg in failures:
        print("FAIL:", msg, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
