#!/usr/bin/env python3
"""iris-eval mcq against transformers and lm-evaluation-harness (ctest eval_mcq_reference).

Usage:  <venv>/bin/python tests/eval/check_mcq.py OUT_DIR IRIS_EVAL   (venv from tools/setup-pyref.sh)

For each random-weight model of eval_models.CONFIGS and each sample file of data/sample/eval/ (medmcqa,
pubmedqa, generic formats):
  1. lm_eval 0.4.3 (--model hf, the Python API simple_evaluate, log_samples) on a local task YAML over the
     same file: the medmcqa and pubmedqa prompts are the harness's own doc_to_text functions (its task
     folders, loaded from the installed package), generic is "Question: {{question}}\\nAnswer:";
  2. transformers directly: the harness's _encode_pair tokenization (no BOS, as HFLM does for Llama), one
     forward per (context, choice), the continuation's log-softmax summed;
  3. iris-eval mcq --hf DIR --format F --input FILE.
Checks: every choice's log-likelihood within 1e-4 (fp32) of (2) and of lm_eval's logged response; acc and
acc_norm per item identical to lm_eval's, and the summary's acc, acc_norm equal and their stderr within
1e-12. The smallest gap between the two best choices (plain and length-normalised) must exceed 1e-3 so a
1e-5 difference cannot flip an argmax (otherwise change the seed). Exit 1 on any failure.
"""
import json
import math
import os
import subprocess
import sys

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import torch  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eval_models  # noqa: E402

TOL_LL = 1e-4
MIN_MARGIN = 1e-3
SAMPLES = os.path.join(eval_models.REPO, "data", "sample", "eval")
FORMATS = ["medmcqa", "pubmedqa", "generic"]

PROMPTS_PY = '''"""The harness's own prompt functions, loaded from the installed lm_eval task folders."""
import importlib.util
import os

import lm_eval

_TASKS = os.path.join(os.path.dirname(lm_eval.__file__), "tasks")


def _load(folder, name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(_TASKS, folder, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_medmcqa = _load("medmcqa", "utils_medmcqa")
_pubmedqa = _load("pubmedqa", "preprocess_pubmedqa")


def medmcqa(doc):
    return _medmcqa.doc_to_text(doc)


def pubmedqa(doc):  # the harness's bigbio field names from the pqa_labeled record
    return _pubmedqa.doc_to_text({"CONTEXTS": doc["context"]["contexts"], "QUESTION": doc["question"]})
'''

TASK_YAML = {
    "medmcqa": "doc_to_text: !function harness_prompts.medmcqa\ndoc_to_choice: ['A', 'B', 'C', 'D']\ndoc_to_target: cop\n",
    "pubmedqa": "doc_to_text: !function harness_prompts.pubmedqa\ndoc_to_choice: ['yes', 'no', 'maybe']\n"
                "doc_to_target: final_decision\n",
    "generic": 'doc_to_text: "Question: {{question}}\\nAnswer:"\ndoc_to_choice: choices\ndoc_to_target: answer\n',
}


def write_tasks(task_dir):
    os.makedirs(task_dir, exist_ok=True)
    with open(os.path.join(task_dir, "harness_prompts.py"), "w") as f:
        f.write(PROMPTS_PY)
    for fmt in FORMATS:
        with open(os.path.join(task_dir, f"iris_{fmt}.yaml"), "w") as f:
            f.write(f"task: iris_{fmt}\ndataset_path: json\ndataset_kwargs:\n  data_files:\n"
                    f"    test: {os.path.join(SAMPLES, fmt + '.jsonl')}\ntest_split: test\n"
                    f"output_type: multiple_choice\n{TASK_YAML[fmt]}"
                    "metric_list:\n  - metric: acc\n    aggregation: mean\n    higher_is_better: true\n"
                    "  - metric: acc_norm\n    aggregation: mean\n    higher_is_better: true\n")


def run_lm_eval(model_dir, task_dir, fmt):
    from lm_eval import simple_evaluate
    from lm_eval.tasks import TaskManager
    out = simple_evaluate(model="hf", model_args=f"pretrained={model_dir},dtype=float32,use_fast_tokenizer=False",
                          tasks=[f"iris_{fmt}"], num_fewshot=0, batch_size=1, device="cpu", log_samples=True,
                          task_manager=TaskManager(include_path=task_dir))
    res = out["results"][f"iris_{fmt}"]
    samples = sorted(out["samples"][f"iris_{fmt}"], key=lambda s: s["doc_id"])
    return res, samples


def encode_pair(tok, context, continuation):  # lm_eval HFLM._encode_pair, tok_encode without special tokens
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces > 0:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    whole = tok.encode(context + continuation, add_special_tokens=False)
    ctx = tok.encode(context, add_special_tokens=False)
    return ctx, whole[len(ctx):]


def direct_loglik(model, tok, context, choice):
    ctx, cont = encode_pair(tok, context, " " + choice)
    inp = (ctx + cont)[-(model.config.max_position_embeddings + 1):][:-1]
    with torch.no_grad():
        logits = model(torch.tensor([inp])).logits[0]
    logprobs = torch.log_softmax(logits.float(), dim=-1)[-len(cont):]
    return float(sum(float(logprobs[i, t]) for i, t in enumerate(cont)))


def margin(values, lengths=None):
    v = sorted((x / lengths[i] if lengths else x) for i, x in enumerate(values))
    return v[-1] - v[-2]


def main(argv):
    out_dir, iris = argv[1], argv[2]
    os.makedirs(out_dir, exist_ok=True)
    task_dir = os.path.join(out_dir, "tasks")
    write_tasks(task_dir)
    sys.path.insert(0, task_dir)
    import harness_prompts
    failures, report = [], {}
    for name in eval_models.CONFIGS:
        model, tok, model_dir = eval_models.build(out_dir, name)
        for fmt in FORMATS:
            case = f"{name}/{fmt}"
            res, samples = run_lm_eval(model_dir, task_dir, fmt)
            items = [json.loads(l) for l in open(os.path.join(SAMPLES, fmt + ".jsonl")) if l.strip()]
            iris_out = os.path.join(out_dir, "iris", name, fmt)
            subprocess.run([iris, "mcq", "--hf", model_dir, "--format", fmt, "--input",
                            os.path.join(SAMPLES, fmt + ".jsonl"), "--output", iris_out], check=True)
            got = [json.loads(l) for l in open(os.path.join(iris_out, "items.jsonl"))]
            summary = json.load(open(os.path.join(iris_out, "summary.json")))
            if len(got) != len(items) or len(samples) != len(items):
                failures.append(f"{case}: {len(got)} Iris items, {len(samples)} lm_eval samples, {len(items)} records")
                continue
            worst_direct = worst_harness = 0.0
            smallest_margin = math.inf
            for i, doc in enumerate(items):
                if fmt == "medmcqa":
                    context, choices = harness_prompts.medmcqa(doc), ["A", "B", "C", "D"]
                elif fmt == "pubmedqa":
                    context, choices = harness_prompts.pubmedqa(doc), ["yes", "no", "maybe"]
                else:
                    context, choices = f"Question: {doc['question']}\nAnswer:", doc["choices"]
                direct = [direct_loglik(model, tok, context, c) for c in choices]
                harness = [float(r[0]) for r in samples[i]["filtered_resps"]]
                mine = got[i]["loglikelihoods"]
                smallest_margin = min(smallest_margin, margin(direct), margin(direct, [len(c) for c in choices]))
                for j in range(len(choices)):
                    worst_direct = max(worst_direct, abs(mine[j] - direct[j]))
                    worst_harness = max(worst_harness, abs(mine[j] - harness[j]))
                for metric in ("acc", "acc_norm"):
                    if float(got[i][metric]) != float(samples[i][metric]):
                        failures.append(f"{case} item {i}: {metric} {got[i][metric]} vs lm_eval {samples[i][metric]}")
            for metric in ("acc", "acc_norm"):
                if summary[metric] != res[f"{metric},none"]:
                    failures.append(f"{case}: {metric} {summary[metric]} vs lm_eval {res[metric + ',none']}")
                if abs(summary[f"{metric}_stderr"] - res[f"{metric}_stderr,none"]) > 1e-12:
                    failures.append(f"{case}: {metric}_stderr {summary[metric + '_stderr']} vs lm_eval "
                                    f"{res[metric + '_stderr,none']}")
            if worst_direct > TOL_LL:
                failures.append(f"{case}: log-likelihood differs from transformers by {worst_direct:.3g} > {TOL_LL}")
            if worst_harness > TOL_LL:
                failures.append(f"{case}: log-likelihood differs from lm_eval by {worst_harness:.3g} > {TOL_LL}")
            if smallest_margin < MIN_MARGIN:
                failures.append(f"{case}: two choices within {smallest_margin:.3g} of each other (change the seed)")
            report[case] = dict(max_abs_vs_transformers=worst_direct, max_abs_vs_lm_eval=worst_harness,
                                min_margin=smallest_margin, acc=summary["acc"], acc_norm=summary["acc_norm"],
                                lm_eval_acc=res["acc,none"], lm_eval_acc_norm=res["acc_norm,none"], n=summary["n"])
            print(f"{case}: {json.dumps(report[case])}", flush=True)
    with open(os.path.join(out_dir, "mcq_report.json"), "w") as f:
        json.dump(report, f, indent=2)
    for msg in failures:
        print("FAIL:", msg, file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
