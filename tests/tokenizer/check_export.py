"""check_export.py HF_DIR DATA_PREFIX JSONL...: the directory iris-convert iris-to-hf --template llama3-chat
wrote from a model trained on Llama-3-tokenized SFT data works with transformers: AutoTokenizer loads it
and its apply_chat_template(messages, tokenize=True) gives exactly the tokens iris-tokenize --sft wrote for
each record; plain text encodes as <|begin_of_text|> + the same ids as the tokenizer.model; the generation
config stops on <|eot_id|>; the model loads and its logits are finite."""
import json
import sys

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from check_chat import read_indexed  # noqa: E402

out, prefix, inputs = sys.argv[1], sys.argv[2], sys.argv[3:]
tok = AutoTokenizer.from_pretrained(out)
assert tok.bos_token == "<|begin_of_text|>" and tok.eos_token == "<|eot_id|>", (tok.bos_token, tok.eos_token)
records = []
for path in inputs:
    for line in open(path, encoding="utf-8"):
        r = json.loads(line)
        if "messages" in r:
            records.append(r["messages"])
        else:
            user = r["instruction"] + ("\n\n" + r["input"] if r.get("input") else "")
            records.append([{"role": "user", "content": user}, {"role": "assistant", "content": r["output"]}])
samples = read_indexed(prefix, np.int32)
assert len(samples) == len(records)
for i, (messages, want) in enumerate(zip(records, samples)):
    got = tok.apply_chat_template(messages, tokenize=True)
    assert got == want, f"record {i}: AutoTokenizer's apply_chat_template differs from iris-tokenize"
text = "Open-angle glaucoma: IOP 21 mmHg, cup-to-disc 0.7.\n"
ids = tok(text)["input_ids"]
assert ids[0] == 128000 and tok.decode(ids[1:]) == text, ids
gen = GenerationConfig.from_pretrained(out)
eos = gen.eos_token_id if isinstance(gen.eos_token_id, list) else [gen.eos_token_id]
assert 128009 in eos, gen.eos_token_id
model = AutoModelForCausalLM.from_pretrained(out, torch_dtype=torch.float32)
logits = model(torch.tensor([ids])).logits
assert logits.shape == (1, len(ids), 128256) and torch.isfinite(logits).all()
print(f"check_export: {len(records)} chats equal through AutoTokenizer.apply_chat_template; eos {eos}; model loads")
