#!/usr/bin/env bash
# The bundled data/sample/tokenizer.model is the model tools/prepare-sample.sh trains from the bundled
# corpus: same pieces with the same scores (the files themselves differ only in the paths spm_train
# records), and it encodes the corpus to the same ids.
set -euo pipefail
src=$1 build=$2
diff <(spm_export_vocab --model="$src/data/sample/tokenizer.model") <(spm_export_vocab --model="$build/data/tokenizer.model")
f=$(ls "$src"/data/sample/corpus/*.txt | head -1)
diff <(spm_encode --model="$src/data/sample/tokenizer.model" --output_format=id <"$f") \
     <(spm_encode --model="$build/data/tokenizer.model" --output_format=id <"$f")
echo "bundled tokenizer matches the one trained from the corpus ($(spm_export_vocab --model="$src/data/sample/tokenizer.model" | wc -l) pieces)"
