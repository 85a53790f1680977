"""check_chat.py PREFIX REF_DIR DATE JSONL...: iris-tokenize --sft --template llama3-chat output against
transformers' apply_chat_template(messages, tokenize=True, date_string=DATE) with the Llama 3.1 Instruct
chat template (meta-llama/Llama-3.1-8B-Instruct tokenizer_config.json, its tool-calling branches left out:
the records have no tools). The trained tokens must be exactly the assistant spans plus their <|eot_id|>:
the characters of each assistant message's trimmed content and the <|eot_id|> after it in the rendered chat
(found by rendering the chat up to that message), mapped to tokens with the tokenizer's offsets.
An Alpaca record {instruction, input, output} is the chat [user: instruction + "\\n\\n" + input, assistant: output]."""
import json
import sys

import numpy as np
from transformers import PreTrainedTokenizerFast

LLAMA31_CHAT_TEMPLATE = (
    "{{- bos_token }}\n"
    "{%- if not date_string is defined %}\n    {%- set date_string = \"26 Jul 2024\" %}\n{%- endif %}\n"
    "{%- if messages[0]['role'] == 'system' %}\n"
    "    {%- set system_message = messages[0]['content']|trim %}\n"
    "    {%- set messages = messages[1:] %}\n"
    "{%- else %}\n    {%- set system_message = \"\" %}\n{%- endif %}\n"
    "{{- \"<|start_header_id|>system<|end_header_id|>\\n\\n\" }}\n"
    "{{- \"Cutting Knowledge Date: December 2023\\n\" }}\n"
    "{{- \"Today Date: \" + date_string + \"\\n\\n\" }}\n"
    "{{- system_message }}\n"
    "{{- \"<|eot_id|>\" }}\n"
    "{%- for message in messages %}\n"
    "    {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}\n"
    "{%- endfor %}\n"
    "{%- if add_generation_prompt %}\n    {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}\n{%- endif %}\n")
def read_indexed(prefix, dtype):
    idx = open(prefix + ".idx", "rb").read()
    assert idx[:9] == b"MMIDIDX\x00\x00"
    n = int(np.frombuffer(idx, np.uint64, 1, 18)[0])
    lengths = np.frombuffer(idx, np.int32, n, 34)
    pointers = np.frombuffer(idx, np.int64, n, 34 + 4 * n)
    data = np.fromfile(prefix + ".bin", dtype)
    size = np.dtype(dtype).itemsize
    return [data[p // size: p // size + l].tolist() for p, l in zip(pointers, lengths)]


def assistant_mask(tok, messages, date):
    render = lambda m: tok.apply_chat_template(m, chat_template=LLAMA31_CHAT_TEMPLATE, tokenize=False,
                                               date_string=date)
    text = render(messages)
    spans = []
    for j, m in enumerate(messages):
        if m["role"] == "assistant":
            start = len(render(messages[:j]) + "<|start_header_id|>assistant<|end_header_id|>\n\n")
            end = start + len(m["content"].strip() + "<|eot_id|>")
            assert text[start:end] == m["content"].strip() + "<|eot_id|>"
            spans.append((start, end))
    enc = tok(text, add_special_tokens=False, return_offsets_mapping=True)
    return [int(any(s <= a and b <= e for s, e in spans)) for a, b in enc["offset_mapping"]]


def main():
    prefix, ref, date, inputs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
    tok = PreTrainedTokenizerFast(tokenizer_file=f"{ref}/llama3-hf/tokenizer.json", bos_token="<|begin_of_text|>",
                                  eos_token="<|eot_id|>")
    tokens = read_indexed(prefix, np.int32)
    masks = read_indexed(prefix + "_loss_mask", np.uint8)
    records = []
    for path in inputs:
        for line in open(path, encoding="utf-8"):
            if not line.strip():
                continue
            r = json.loads(line)
            if "messages" in r:
                records.append(r["messages"])
            else:
                user = r["instruction"] + ("\n\n" + r["input"] if r.get("input") else "")
                records.append([{"role": "user", "content": user}, {"role": "assistant", "content": r["output"]}])
    assert len(tokens) == len(records), f"{len(tokens)} samples written, {len(records)} records"
    trained = 0
    for i, (messages, got, mask) in enumerate(zip(records, tokens, masks)):
        want = tok.apply_chat_template(messages, chat_template=LLAMA31_CHAT_TEMPLATE, tokenize=True,
                                       date_string=date)
        assert got == want, f"sample {i}: tokens differ from apply_chat_template\n got {got}\nwant {want}"
        assert mask == assistant_mask(tok, messages, date), f"sample {i}: loss mask differs from the assistant " \
                                                            f"spans\n got {mask}"
        assert got.count(128009) >= 3 and sum(mask) > 0
        trained += sum(mask)
    print(f"check_chat: {len(records)} samples, {sum(map(len, tokens))} tokens, {trained} trained, equal to "
          f"apply_chat_template (date {date!r})")


if __name__ == "__main__":
    main()
