"""Reference token ids for tests/tokenizer (test_tokenizer_parity).

Usage: make_reference.py OUT_DIR

Writes, under OUT_DIR:
  llama3/tokenizer.model           Meta's Llama 3 tiktoken file, copied from the llama-models package
  llama3-hf/tokenizer.json         the same tokenizer as Hugging Face tokenizer.json (transformers'
                                   TikTokenConverter, as used for every HF Llama 3 repo, + 256 special tokens)
  gpt2-style/tokenizer.json        the same vocabulary and merges with GPT-2's ByteLevel pre-tokenizer
                                   (use_regex=true, no ignore_merges) and <|endoftext|>
  reference.json                   {"cases": [{"name", "text", "allow_special", "ids": {KIND: [...]}}]}
ids come from tiktoken (llama3), tokenizers (llama3-hf, gpt2-style). Inputs: every file of the bundled
corpus (data/sample/corpus), every line of the SFT sample (data/sample/sft/*.jsonl) and each of its string
fields, tests/tokenizer/edge_cases.txt whole and line by line (edge cases also with special tokens allowed), and
60 seeded random strings mixing scripts, spaces, digits, marks, emoji and any Unicode scalar value.
"""
import base64
import importlib.util
import json
import os
import random
import shutil
import string
import unicodedata
import sys

import tiktoken
import tiktoken.load
from tokenizers import AddedToken, Tokenizer, pre_tokenizers
from transformers.convert_slow_tokenizer import TikTokenConverter

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
LLAMA3_PATTERN = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"


def llama3_specials():  # Meta's llama3/tokenizer.py
    names = ["<|begin_of_text|>", "<|end_of_text|>", "<|reserved_special_token_0|>", "<|reserved_special_token_1|>",
             "<|finetune_right_pad_id|>", "<|step_id|>", "<|start_header_id|>", "<|end_header_id|>", "<|eom_id|>",
             "<|eot_id|>", "<|python_tag|>", "<|image|>"]
    return names + [f"<|reserved_special_token_{2 + i}|>" for i in range(256 - len(names))]


def read_ranks(path):
    ranks = {}
    with open(path, "rb") as f:
        for line in f:
            if line.strip():
                token, rank = line.split()
                ranks[base64.b64decode(token)] = int(rank)
    return ranks


def main():
    out = sys.argv[1]
    spec = importlib.util.find_spec("llama_models")
    assert spec is not None, "llama-models is not installed (tools/setup-pyref.sh installs it)"
    src = os.path.join(spec.submodule_search_locations[0], "llama3", "tokenizer.model")
    for sub in ("llama3", "llama3-hf", "gpt2-style"):
        os.makedirs(os.path.join(out, sub), exist_ok=True)
    model_path = os.path.join(out, "llama3", "tokenizer.model")
    shutil.copyfile(src, model_path)

    ranks = read_ranks(model_path)
    specials = llama3_specials()
    special_ids = {s: len(ranks) + i for i, s in enumerate(specials)}
    enc = tiktoken.Encoding(name="llama3", pat_str=LLAMA3_PATTERN, mergeable_ranks=ranks, special_tokens=special_ids)

    # TikTokenConverter reads the file through tiktoken.load.read_file, which wants blobfile for a local
    # path; a plain read gives it the same bytes.
    tiktoken.load.read_file = lambda p: open(p, "rb").read()
    hf = TikTokenConverter(vocab_file=model_path, pattern=LLAMA3_PATTERN).converted()
    hf.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in specials])
    assert hf.token_to_id("<|begin_of_text|>") == 128000 and hf.token_to_id("<|eot_id|>") == 128009
    hf.save(os.path.join(out, "llama3-hf", "tokenizer.json"))

    gpt2_json = json.loads(hf.to_str())
    gpt2_json["model"]["ignore_merges"] = False
    gpt2_json["pre_tokenizer"] = json.loads(pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True).__getstate__())
    gpt2_json["post_processor"] = None
    gpt2_json["added_tokens"] = []
    gpt2 = Tokenizer.from_str(json.dumps(gpt2_json))
    gpt2.add_special_tokens([AddedToken("<|endoftext|>", special=True, normalized=False)])
    gpt2.save(os.path.join(out, "gpt2-style", "tokenizer.json"))

    texts = []  # (name, text)
    corpus = os.path.join(REPO, "data", "sample", "corpus")
    for name in sorted(os.listdir(corpus)):
        texts.append((f"corpus/{name}", open(os.path.join(corpus, name), encoding="utf-8", newline="").read()))
    sft = os.path.join(REPO, "data", "sample", "sft")
    for name in sorted(os.listdir(sft)):
        for n, line in enumerate(open(os.path.join(sft, name), encoding="utf-8", newline=""), 1):
            texts.append((f"sft/{name}:{n}", line))
            record = json.loads(line)
            strings = [v for v in record.values() if isinstance(v, str)]
            strings += [m["content"] for m in record.get("messages", [])]
            for k, s in enumerate(strings):
                texts.append((f"sft/{name}:{n}#{k}", s))
    edge = open(os.path.join(HERE, "edge_cases.txt"), encoding="utf-8", newline="").read()
    texts.append(("edge_cases.txt", edge))
    for n, line in enumerate(edge.split("\n"), 1):
        texts.append((f"edge_cases.txt:{n}", line))

    # Random Unicode (seeded): every script block mixed with spaces, digits, apostrophes and line breaks.
    # Code points come from those assigned in Unicode 14 (Python 3.11's unicodedata): PCRE2 10.42 and
    # tokenizers 0.19's Oniguruma classify by Unicode 14, tiktoken 0.7's regex by a later version, so a
    # letter assigned since (CJK Extension H, U+31350..) splits differently in tiktoken (docs/tokenizers.md).
    rng = random.Random(14)
    pools = [string.ascii_letters, string.digits * 3, " " * 6 + "\t\r\n", "'\u2019sStTmMdD", string.punctuation,
             "".join(map(chr, range(0xA0, 0x250))), "".join(map(chr, range(0x300, 0x370))),
             "".join(map(chr, range(0x4E00, 0x4F00))), "".join(map(chr, range(0x1F300, 0x1F400))),
             "\u00a0\u1680\u180e\u2000\u2009\u200b\u2028\u202f\u205f\u3000\ufeff\x85\x0b\x0c\x1c"]
    for k in range(60):
        chars = []
        for _ in range(400):
            r = rng.random()
            if r < 0.85:
                chars.append(rng.choice(rng.choice(pools)))
            else:  # any code point assigned in Unicode 14 (see below)
                cp = rng.randrange(0x20, 0x10FFFF)
                while unicodedata.category(chr(cp)) in ("Cn", "Cs"):
                    cp = rng.randrange(0x20, 0x10FFFF)
                chars.append(chr(cp))
        texts.append((f"random/{k}", "".join(chars)))

    hf.encode_special_tokens = True  # special-token text stays text, like tiktoken's encode(disallowed_special=())
    gpt2.encode_special_tokens = True
    cases = []
    for name, text in texts:
        cases.append({"name": name, "text": text, "allow_special": False, "ids": {
            "tiktoken": enc.encode(text, disallowed_special=()),
            "llama3-hf": hf.encode(text, add_special_tokens=False).ids,
            "gpt2-style": gpt2.encode(text, add_special_tokens=False).ids}})
    hf.encode_special_tokens = False
    gpt2.encode_special_tokens = False
    for name, text in texts:
        if name.startswith("edge_cases.txt"):
            cases.append({"name": name + " (allow special)", "text": text, "allow_special": True, "ids": {
                "tiktoken": enc.encode(text, allowed_special="all"),
                "llama3-hf": hf.encode(text, add_special_tokens=False).ids,
                "gpt2-style": gpt2.encode(text, add_special_tokens=False).ids}})
    # The HF file must agree with tiktoken on everything (it is the same tokenizer).
    for c in cases:
        assert c["ids"]["tiktoken"] == c["ids"]["llama3-hf"], f"tiktoken and tokenizers disagree on {c['name']}"
    with open(os.path.join(out, "reference.json"), "w", encoding="utf-8") as f:
        json.dump({"cases": cases}, f, ensure_ascii=False)
    print(f"make_reference: {len(cases)} cases, {sum(len(c['ids']['tiktoken']) for c in cases)} tiktoken ids -> {out}")


if __name__ == "__main__":
    main()
