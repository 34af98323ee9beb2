"""Hostile inputs across the subcommands: wrong types and ranges in configs and control files, NaN/inf in numeric
inputs, truncated / zero-byte / renamed files, unwritable or existing outputs. Each case runs ``worldgen.cli.main``
in-process and must end with exit code 2 and one line ``error: ...`` naming the file or field and what was expected
(never a traceback), and leave no new file anywhere (the case's folder and every fixture folder are compared before
and after). ``docs/results/inputs.md`` lists the cases with the message each got; to record them again run

    WORLDGEN_RECORD_INPUTS=inputs.jsonl .venv/bin/python -m pytest tests/commands/test_hostile_inputs.py

The kill -9 test interrupts ``worldgen data convert`` mid-write and reruns it.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import ROOT, cli_cmd
from worldgen.cli import main as cli

RANDOM = "--detector random --size 32"
GPT = "generate drivingworld --ckpt {gpt} --tokens {tokens} --frames 3"
ARTV = "generate artv --ckpt {artv} --prompt road --frames 3 --steps 1"
PGD = "pgd sample --ckpt {pgd} --n-traj 2"
TOY = "train {R}/configs/toy/mlp.yaml trainer.max_steps=2 out_dir={T}/run"
RAVL = "ravl train {R}/configs/ravl/pointmass_tiny.yaml out_dir={T}/run"
FVD = f"eval fvd --fake {{eps}} --out {{T}}/f.json {RANDOM}"

# (id, command line after `worldgen`, regex the error line must match)
CASES = [
    # ---- data convert: missing, zero-byte, truncated, renamed, non-video files; bad pose files; bad settings
    ("convert/missing-src", "data convert {B}/nope --out {T}/ds", r"bad/nope: source folder not found"),
    ("convert/src-is-a-file", "data convert {B}/afile --out {T}/ds", r"bad/afile: source folder not found"),
    ("convert/empty-src", "data convert {B}/empty --out {T}/ds", r"empty: no usable videos to convert"),
    ("convert/zero-byte-mp4", "data convert {B}/only_zero --out {T}/ds", r"zero.mp4: empty file \(0 bytes\)"),
    ("convert/truncated-mp4", "data convert {B}/only_trunc --out {T}/ds", r"trunc.mp4: cannot open video"),
    ("convert/txt-renamed-mp4", "data convert {B}/only_renamed --out {T}/ds", r"renamed.mp4: cannot open video"),
    ("convert/not-a-video", "data convert {B}/only_txt --out {T}/ds", r"notes.txt: not a video file \(.txt"),
    ("convert/skip-bad-nothing-left", "data convert {B}/only_trunc --out {T}/ds --skip-bad",
     r"only_trunc: no usable videos to convert \(trunc.mp4: cannot open"),
    ("convert/pose-csv-nan", "data convert {B}/ok --out {T}/ds --poses {B}/nan.csv",
     r"nan.csv:2: x, y, yaw and speed must be finite"),
    ("convert/pose-csv-text", "data convert {B}/ok --out {T}/ds --poses {B}/text.csv",
     r"text.csv:2: bad pose row, expected numbers"),
    ("convert/pose-csv-columns", "data convert {B}/ok --out {T}/ds --poses {B}/badcol.csv",
     r"badcol.csv: CSV needs columns"),
    ("convert/pose-json-strings", "data convert {B}/ok --out {T}/ds --poses {B}/str.json",
     r"str.json: 'good'.poses must be \[\[x, y, yaw\], ...\] of numbers"),
    ("convert/pose-json-inf", "data convert {B}/ok --out {T}/ds --poses {B}/inf.json",
     r"inf.json: 'good'.poses must hold finite numbers"),
    ("convert/pose-json-broken", "data convert {B}/ok --out {T}/ds --poses {B}/broken.json",
     r"broken.json: not valid JSON"),
    ("convert/pose-json-count", "data convert {B}/ok --out {T}/ds --poses {B}/short.json",
     r"good.mp4: pose file has 2 poses but the video has 16 frames"),
    ("convert/pose-missing", "data convert {B}/ok --out {T}/ds --poses {B}/nope.csv", r"nope.csv: pose file not found"),
    ("convert/size-zero", "data convert {B}/ok --out {T}/ds --size 0x0", r"size: expected \(height, width\)"),
    ("convert/size-text", "data convert {B}/ok --out {T}/ds --size big", r"--size must look like 64x128"),
    ("convert/fps-nan", "data convert {B}/ok --out {T}/ds --fps nan", r"fps: expected a positive frame rate"),
    ("convert/fps-inf", "data convert {B}/ok --out {T}/ds --fps inf", r"fps: expected a positive frame rate"),
    ("convert/fps-negative", "data convert {B}/ok --out {T}/ds --fps -5", r"fps: expected a positive frame rate"),
    ("convert/out-is-a-file", "data convert {B}/ok --out {B}/afile", r"--out .*afile: exists and is a file"),
    ("convert/out-under-a-file", "data convert {B}/ok --out {B}/afile/ds",
     r"--out .*afile/ds: cannot be created, .*afile is a file"),
    # ---- data inspect / driving
    ("inspect/missing", "data inspect {B}/nope", r"bad/nope: no such dataset folder"),
    ("inspect/not-a-dataset", "data inspect {B}/empty", r"empty: not a worldgen driving dataset"),
    ("inspect/rows-zero", "data inspect {eps} --rows 0 --sheet {T}/s.png", r"--rows and --cols: expected whole"),
    ("inspect/cols-negative", "data inspect {eps} --cols -1 --sheet {T}/s.png", r"--rows and --cols: expected"),
    ("inspect/sheet-is-a-folder", "data inspect {eps} --sheet {T}", r"--sheet .*: is a folder; expected a file"),
    ("inspect/sheet-under-a-file", "data inspect {eps} --sheet {B}/afile/s.png", r"cannot be created, .*afile is a"),
    ("driving/episodes-negative", "data driving --out {T}/d --episodes -1", r"need --episodes >= 1"),
    ("driving/frames-zero", "data driving --out {T}/d --frames 0", r"need --episodes >= 1 and --frames >= 2"),
    ("driving/fps-nan", "data driving --out {T}/d --fps nan", r"--fps: expected a positive frame rate, got nan"),
    ("driving/size-zero", "data driving --out {T}/d --size 0x0", r"--size must be HxW with even sides >= 8"),
    ("driving/unknown-env", "data driving --out {T}/d --envs nope-v0", r"unknown env\(s\) \['nope-v0'\]"),
    ("driving/bad-shard", "data driving --out {T}/d --shard 3/2", r"--shard 3/2: need 0 <= I < N"),
    ("driving/out-is-a-file", "data driving --out {B}/afile --episodes 1 --frames 2", r"afile: exists and is a file"),
    # ---- tokenize: broken tokenizer folders, datasets, ranges, outputs, devices
    ("tokenize/missing-tokenizer", "tokenize --tokenizer {B}/nope --data {eps} --out {T}/tk",
     r"nope: tokenizer folder not found"),
    ("tokenize/zero-byte-weights", "tokenize --tokenizer {B}/tok_zero --data {eps} --out {T}/tk",
     r"tok_zero/model.safetensors: not a readable safetensors file"),
    ("tokenize/truncated-weights", "tokenize --tokenizer {B}/tok_trunc --data {eps} --out {T}/tk",
     r"tok_trunc/model.safetensors: not a readable safetensors file"),
    ("tokenize/text-as-weights", "tokenize --tokenizer {B}/tok_txt --data {eps} --out {T}/tk",
     r"tok_txt/model.safetensors: not a readable safetensors file"),
    ("tokenize/broken-config", "tokenize --tokenizer {B}/tok_badyaml --data {eps} --out {T}/tk",
     r"tok_badyaml/config.yaml: not valid YAML"),
    ("tokenize/wrong-checkpoint", "tokenize --tokenizer {gpt} --data {eps} --out {T}/tk",
     r"task is 'drivingworld', expected 'vq_tokenizer'"),
    ("tokenize/missing-data", "tokenize --tokenizer {tok} --data {B}/nope --out {T}/tk",
     r"nope: not a worldgen driving dataset"),
    ("tokenize/stride-zero", "tokenize --tokenizer {tok} --data {eps} --out {T}/tk --stride 0",
     r"stride and chunk must be >= 1"),
    ("tokenize/chunk-negative", "tokenize --tokenizer {tok} --data {eps} --out {T}/tk --chunk -1",
     r"stride and chunk must be >= 1"),
    ("tokenize/out-is-a-file", "tokenize --tokenizer {tok} --data {eps} --out {B}/afile",
     r"--out .*afile: exists and is a file; expected a folder"),
    ("tokenize/bad-device", "tokenize --tokenizer {tok} --data {eps} --out {T}/tk --device banana",
     r"--device 'banana': not a torch device"),
    ("tokenize/gpu-not-here", "tokenize --tokenizer {tok} --data {eps} --out {T}/tk --device cuda:7",
     r"--device 'cuda:7': (CUDA is not available|this machine has \d+ GPU)"),
    # ---- train: config files and overrides
    ("train/missing-config", "train {B}/nope.yaml", r"nope.yaml: config file not found"),
    ("train/broken-yaml", "train {B}/bad.yaml", r"bad.yaml: not valid YAML \(while parsing a flow sequence .*line 2"),
    ("train/yaml-list", "train {B}/list.yaml", r"list.yaml: expected a mapping at the top level"),
    ("train/empty-yaml", "train {B}/zero.yaml", r"zero.yaml: missing 'task'"),
    ("train/wrong-type", TOY + " trainer.max_steps=abc", r"field 'trainer.max_steps' expects int"),
    ("train/lr-nan", TOY + " optim.lr=nan", r"field 'optim.lr' is nan; expected a finite number"),
    ("train/lr-inf", TOY + " optim.lr=inf", r"field 'optim.lr' is inf; expected a finite number"),
    ("train/lr-negative", TOY + " optim.lr=-1", r"field 'optim.lr' must be > 0, got -1.0"),
    ("train/batch-size-zero", TOY + " data.batch_size=0", r"field 'data.batch_size' must be >= 1, got 0"),
    ("train/samples-negative", TOY + " data.n_train=-5", r"data.n_train must be >= 1"),
    ("train/max-steps-negative", TOY + " trainer.max_steps=-7", r"trainer: `max_steps` must be a non-negative"),
    ("train/no-gpu", TOY + " trainer.accelerator=gpu", r"trainer: No supported gpu backend found"),
    ("train/devices-text", TOY + " trainer.devices=abc", r"trainer: `devices` selected with `CPUAccelerator`"),
    ("train/unknown-key", TOY + " nope=1", r"unknown key 'nope'. Valid keys here"),
    ("train/override-without-value", TOY + " trainer.max_steps", r"override 'trainer.max_steps' must look like"),
    ("train/out-is-a-file", "train {R}/configs/toy/mlp.yaml out_dir={B}/afile", r"out_dir .*afile: exists and is a"),
    ("train/resume-zero-byte", TOY + " trainer.resume={B}/zero.mp4", r"trainer.resume: .*zero.mp4 is not a PyTorch"),
    ("train/resume-missing", TOY + " trainer.resume={B}/nope.ckpt", r"trainer.resume: checkpoint .*nope.ckpt not"),
    ("train/finished-run", "train {R}/configs/toy/mlp.yaml out_dir={B}/finished",
     r"out_dir .*finished: already holds a trained model .*trainer.resume=last"),
    ("pgd-train/zero-byte-data", "pgd train {R}/configs/pgd/tiny.yaml data.path={B}/zero.hdf5 out_dir={T}/p",
     r"zero.hdf5: not a readable HDF5 file"),
    ("pgd-train/text-as-hdf5", "pgd train {R}/configs/pgd/tiny.yaml data.path={B}/txt.hdf5 out_dir={T}/p",
     r"txt.hdf5: not a readable HDF5 file"),
    ("pgd-train/wrong-task", "pgd train {R}/configs/toy/mlp.yaml out_dir={T}/p", r"task is 'toy', expected 'pgd'"),
    # ---- generate drivingworld: settings, control files, contexts, outputs
    ("drivingworld/missing-ckpt", "generate drivingworld --ckpt {B}/nope --tokens {tokens} --out {T}/r.mp4",
     r"nope: DrivingWorld GPT folder not found"),
    ("drivingworld/wrong-ckpt", "generate drivingworld --ckpt {tok} --tokens {tokens} --out {T}/r.mp4",
     r"task is 'vq_tokenizer', expected 'drivingworld'"),
    ("drivingworld/frames-zero", "generate drivingworld --ckpt {gpt} --tokens {tokens} --frames 0 --out {T}/r.mp4",
     r"--frames must be >= 1"),
    ("drivingworld/frames-text", "generate drivingworld --ckpt {gpt} --frames abc --out {T}/r.mp4",
     r"argument --frames: invalid int value: 'abc'"),
    ("drivingworld/context-negative", GPT + " --context-frames -2 --out {T}/r.mp4", r"--context-frames >= 0"),
    ("drivingworld/temperature-nan", GPT + " --temperature nan --out {T}/r.mp4", r"temperature: expected a finite"),
    ("drivingworld/temperature-negative", GPT + " --temperature -1 --out {T}/r.mp4", r"temperature: expected a"),
    ("drivingworld/top-p-2", GPT + " --top-p 2 --out {T}/r.mp4", r"top_p: expected a probability mass in \(0, 1\]"),
    ("drivingworld/top-p-zero", GPT + " --top-p 0 --out {T}/r.mp4", r"top_p: expected a probability mass"),
    ("drivingworld/top-k-negative", GPT + " --top-k -3 --out {T}/r.mp4", r"top_k: expected a whole number >= 0"),
    ("drivingworld/fps-zero", GPT + " --fps 0 --out {T}/r.mp4", r"--fps: expected a positive frame rate, got 0.0"),
    ("drivingworld/fps-nan", GPT + " --fps nan --out {T}/r.mp4", r"--fps: expected a positive frame rate, got nan"),
    ("drivingworld/speed-inf", GPT + " --speed inf --manoeuvre lane_change_left --out {T}/r.mp4",
     r"--speed: expected a finite speed >= 0 m/s, got inf"),
    ("drivingworld/controls-nan", GPT + " --controls {B}/ctl_nan.json --out {T}/r.mp4",
     r"ctl_nan.json: 'speed' must be finite numbers \(row 0 is nan\)"),
    ("drivingworld/controls-inf-csv", GPT + " --controls {B}/ctl_inf.csv --out {T}/r.mp4",
     r"ctl_inf.csv: 'speed' must be finite numbers \(row 0 is inf\)"),
    ("drivingworld/controls-text", GPT + " --controls {B}/ctl_str.json --out {T}/r.mp4",
     r"ctl_str.json: 'speed' must be numbers, one per frame"),
    ("drivingworld/controls-broken-json", GPT + " --controls {B}/ctl_bad.json --out {T}/r.mp4",
     r"ctl_bad.json: not valid JSON"),
    ("drivingworld/controls-json-list", GPT + " --controls {B}/ctl_list.json --out {T}/r.mp4",
     r"ctl_list.json: expected a JSON object"),
    ("drivingworld/controls-csv-header", GPT + " --controls {B}/ctl_badhdr.csv --out {T}/r.mp4",
     r"ctl_badhdr.csv: control file needs 'speed' \(m/s\) and 'yaw_rate'"),
    ("drivingworld/controls-zero-byte", GPT + " --controls {B}/ctl_zero.csv --out {T}/r.mp4",
     r"ctl_zero.csv: control file needs 'speed'"),
    ("drivingworld/controls-renamed-video", GPT + " --controls {B}/zero.mp4 --out {T}/r.mp4",
     r"zero.mp4: expected a .json or .csv control file"),
    ("drivingworld/controls-missing", GPT + " --controls {B}/nope.json --out {T}/r.mp4",
     r"nope.json: control file not found"),
    ("drivingworld/unknown-episode", GPT + " --context-from nope --out {T}/r.mp4",
     r"tokens/episodes/nope.safetensors: no such weights file"),
    ("drivingworld/zero-byte-shard", GPT + " --context-from {B}/zero.safetensors --out {T}/r.mp4",
     r"zero.safetensors: not a readable safetensors file"),
    ("drivingworld/missing-tokens", "generate drivingworld --ckpt {gpt} --tokens {B}/nope --out {T}/r.mp4",
     r"nope/meta.json: no such file"),
    ("drivingworld/tokenizer-mismatch", GPT + " --tokenizer {tok} --out {T}/r.mp4", r"does not fit"),
    ("drivingworld/out-is-a-folder", GPT + " --out {T}", r"--out .*: is a folder; expected a file name"),
    ("drivingworld/out-under-a-file", GPT + " --out {B}/afile/r.mp4", r"cannot be created, .*afile is a file"),
    # ---- generate artv
    ("artv/missing-ckpt", "generate artv --ckpt {B}/nope --prompt a --out {T}/a.mp4", r"nope: ART-V folder not"),
    ("artv/wrong-ckpt", "generate artv --ckpt {gpt} --prompt a --out {T}/a.mp4", r"task is 'drivingworld', expected"),
    ("artv/frames-zero", "generate artv --ckpt {artv} --prompt a --frames 0 --out {T}/a.mp4",
     r"--frames and --steps must be >= 1, got 0 and"),
    ("artv/steps-zero", "generate artv --ckpt {artv} --prompt a --frames 3 --steps 0 --out {T}/a.mp4",
     r"--frames and --steps must be >= 1, got 3 and 0"),
    ("artv/cfg-nan", ARTV + " --cfg-text nan --out {T}/a.mp4", r"--cfg-text: expected finite numbers"),
    ("artv/churn-inf", ARTV + " --churn inf --out {T}/a.mp4", r"--churn: expected finite numbers"),
    ("artv/aug-sigma-negative", ARTV + " --aug-sigma -1 --out {T}/a.mp4", r"--aug-sigma: expected numbers >= 0"),
    ("artv/fps-zero", ARTV + " --fps 0 --out {T}/a.mp4", r"--fps: expected a positive frame rate"),
    ("artv/switch-beyond-end", ARTV + " --prompt b --switch-at 9 --out {T}/a.mp4",
     r"--switch-at must be increasing frame indices inside \(0, 3\)"),
    ("artv/switch-count", ARTV + " --prompt b --out {T}/a.mp4", r"2 prompts need 1 --switch-at"),
    ("artv/image-text-as-png", ARTV + " --image {B}/img.png --out {T}/a.mp4", r"img.png: not a readable image"),
    ("artv/image-zero-byte", ARTV + " --image {B}/zero.png --out {T}/a.mp4", r"zero.png: not a readable image"),
    ("artv/image-missing", ARTV + " --image {B}/nope.png --out {T}/a.mp4", r"--image .*nope.png: no such file"),
    ("artv/image-zero-byte-video", ARTV + " --image {B}/zero.mp4 --out {T}/a.mp4", r"zero.mp4: empty file"),
    ("artv/image-truncated-video", ARTV + " --image {B}/trunc.mp4 --out {T}/a.mp4", r"trunc.mp4: cannot"),
    ("artv/out-is-a-folder", ARTV + " --out {T}", r"--out .*: is a folder; expected a file name"),
    ("artv/out-under-a-file", ARTV + " --out {B}/afile/a.mp4", r"cannot be created, .*afile is a file"),
    ("artv/bad-device", ARTV + " --device banana --out {T}/a.mp4", r"--device 'banana': not a torch device"),
    # ---- eval fvd
    ("fvd/missing", FVD + " --real {B}/nope", r"bad/nope: no such file or folder"),
    ("fvd/empty-folder", FVD + " --real {B}/empty", r"empty: no usable videos .*the folder is empty"),
    ("fvd/zero-byte-only", FVD + " --real {B}/only_zero", r"only_zero: no usable videos .*zero.mp4: empty file"),
    ("fvd/truncated-only", FVD + " --real {B}/only_trunc", r"only_trunc: no usable videos .*trunc.mp4: cannot open"),
    ("fvd/renamed-only", FVD + " --real {B}/only_renamed", r"no usable videos .*renamed.mp4: cannot open video"),
    ("fvd/not-videos-only", FVD + " --real {B}/only_txt", r"no usable videos .*notes.txt: not a video file"),
    ("fvd/zero-byte-file", FVD + " --real {B}/zero.mp4", r"zero.mp4: empty file \(0 bytes\), not a video"),
    ("fvd/file-without-suffix", FVD + " --real {B}/afile", r"afile: not a video file \(no suffix"),
    ("fvd/too-short", FVD + " --real {B}/short", r"s.mp4: 5 frames, but protocol fvd16 needs clips spanning 16"),
    ("fvd/size-zero", "eval fvd --real {eps} --fake {eps} --out {T}/f.json --size 0",
     r"--size: the detector's input resolution must be a whole number >= 8 px"),
    ("fvd/batch-zero", FVD + " --real {eps} --batch-size 0", r"stride, clips_per_video and batch_size must be >= 1"),
    ("fvd/clips-zero", FVD + " --real {eps} --clips-per-video 0", r"clips_per_video and batch_size must be >= 1"),
    ("fvd/stride-zero", FVD + " --real {eps} --protocol drift --stride 0", r"stride, clips_per_video and batch"),
    ("fvd/horizon-negative", FVD + " --real {eps} --protocol drift --horizon -3", r"horizon: expected a number"),
    ("fvd/n-real-zero", FVD + " --real {eps} --n-real 0", r"real: the number of videos to use must be >= 1"),
    ("fvd/window-too-short", FVD + " --real {eps} --protocol drift --window 4", r"clips of 4 frames are too short"),
    ("fvd/detector-zero-byte", "eval fvd --real {eps} --fake {eps} --out {T}/f.json --detector i3d:{B}/zero.mp4",
     r"zero.mp4: not a TorchScript detector or a weights-only state_dict \(empty file\)"),
    ("fvd/detector-unknown", "eval fvd --real {eps} --fake {eps} --out {T}/f.json --detector banana",
     r"--detector: expected 'random' or 'i3d:PATH'"),
    ("fvd/out-is-a-folder", "eval fvd --real {eps} --fake {eps} --out {T}", r"--out .*: is a folder; expected a file"),
    ("fvd/out-under-a-file", "eval fvd --real {eps} --fake {eps} --out {B}/afile/f.json", r"afile is a file"),
    ("fvd/bad-device", FVD + " --real {eps} --device banana", r"--device 'banana': not a torch device"),
    # ---- eval tokenizer
    ("eval-tokenizer/missing", "eval tokenizer --tokenizer {B}/nope --data {eps}", r"nope: tokenizer folder not"),
    ("eval-tokenizer/truncated", "eval tokenizer --tokenizer {B}/tok_trunc --data {eps}",
     r"tok_trunc/model.safetensors: not a readable safetensors file"),
    ("eval-tokenizer/not-a-dataset", "eval tokenizer --tokenizer {tok} --data {B}/empty", r"not a worldgen driving"),
    ("eval-tokenizer/chunk-zero", "eval tokenizer --tokenizer {tok} --data {eps} --chunk 0",
     r"--chunk and --max-episodes must be >= 1, got 0"),
    ("eval-tokenizer/max-episodes-negative", "eval tokenizer --tokenizer {tok} --data {eps} --max-episodes -1",
     r"--chunk and --max-episodes must be >= 1, got 16 and -1"),
    ("eval-tokenizer/image-under-a-file", "eval tokenizer --tokenizer {tok} --data {eps} --image {B}/afile/x.png",
     r"--image .*: cannot be created, .*afile is a file"),
    # ---- pgd sample
    ("pgd/missing-ckpt", "pgd sample --ckpt {B}/nope --n-traj 2 --out {T}/s.hdf5", r"nope: `worldgen pgd train`"),
    ("pgd/broken-json", "pgd sample --ckpt {B}/pgd_badjson --n-traj 2 --out {T}/s.hdf5",
     r"pgd_badjson/pgd.json: not valid JSON"),
    ("pgd/zero-byte-weights", "pgd sample --ckpt {B}/pgd_zero --n-traj 2 --out {T}/s.hdf5",
     r"pgd_zero/model.safetensors: not a readable safetensors file"),
    ("pgd/n-traj-zero", "pgd sample --ckpt {pgd} --n-traj 0 --out {T}/s.hdf5", r"--n-traj: expected whole numbers >= 1"),
    ("pgd/batch-zero", PGD + " --batch-size 0 --out {T}/s.hdf5", r"--batch-size: expected whole numbers >= 1"),
    ("pgd/n-steps-zero", PGD + " --n-steps 0 --out {T}/s.hdf5", r"--n-steps: expected whole numbers >= 1, got 0"),
    ("pgd/coeff-nan", PGD + " --coeff nan --policy {policy} --out {T}/s.hdf5", r"--coeff: expected a finite"),
    ("pgd/coeff-inf", PGD + " --coeff inf --policy {policy} --out {T}/s.hdf5", r"--coeff: expected a finite"),
    ("pgd/coeff-without-policy", PGD + " --coeff 1 --out {T}/s.hdf5", r"--coeff != 0 needs --policy"),
    ("pgd/missing-policy", PGD + " --coeff 1 --policy {B}/nope --out {T}/s.hdf5", r"nope: no policy.json"),
    ("pgd/zero-byte-policy", PGD + " --coeff 1 --policy {B}/pol_zero --out {T}/s.hdf5",
     r"pol_zero/policy.safetensors: not a readable safetensors file"),
    ("pgd/out-is-a-folder", PGD + " --out {T}", r"--out .*: is a folder; expected a file name"),
    ("pgd/out-under-a-file", PGD + " --out {B}/afile/s.hdf5", r"cannot be created, .*afile is a file"),
    ("pgd/bad-device", PGD + " --device banana --out {T}/s.hdf5", r"--device 'banana': not a torch device"),
    # ---- ravl train
    ("ravl/missing-config", "ravl train {B}/nope.yaml", r"nope.yaml: config file not found"),
    ("ravl/wrong-type", RAVL + " epochs=abc", r"field 'epochs' expects int"),
    ("ravl/eta-nan", RAVL + " agent.eta=nan", r"field 'agent.eta' is nan; expected a finite number"),
    ("ravl/epochs-negative", RAVL + " epochs=-1", r"field 'epochs' must be >= 1, got -1"),
    ("ravl/batch-zero", RAVL + " batch_size=0", r"field 'batch_size' must be >= 1, got 0"),
    ("ravl/critics-zero", RAVL + " agent.num_critics=0", r"field 'agent.num_critics' must be >= 1, got 0"),
    ("ravl/actor-lr-negative", RAVL + " agent.actor_lr=-0.1", r"field 'agent.actor_lr' must be > 0"),
    ("ravl/rollout-every-zero", RAVL + " rollout.every=0", r"rollout.length/batch/every/retain_epochs"),
    ("ravl/real-ratio-2", RAVL + " rollout.real_ratio=2", r"rollout.real_ratio: expected a fraction in \[0, 1\]"),
    ("ravl/elites-over-ensemble", RAVL + " dynamics.num_elites=9", r"dynamics.num_elites \(9\) cannot exceed"),
    ("ravl/unknown-env", RAVL + " env=nope", r"env 'nope' needs 'dataset'"),
    ("ravl/bad-device", RAVL + " device=banana", r"device 'banana': not a torch device"),
    ("ravl/out-is-a-file", "ravl train {R}/configs/ravl/pointmass_tiny.yaml out_dir={B}/afile",
     r"out_dir .*afile: exists and is a file"),
    ("ravl/unknown-key", RAVL + " nope=3", r"unknown key 'nope'"),
]


def _write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(text, bytes) else path.write_text)(text)
    return path


@pytest.fixture(scope="module")
def bad(tmp_path_factory, tokenizer_dir, offline) -> Path:
    """Hostile files: broken videos, pose and control files, configs, checkpoint folders, a regular file in the way."""
    from worldgen.data.video import write_video

    B = tmp_path_factory.mktemp("bad", numbered=False)
    rng = np.random.default_rng(0)
    write_video(B / "good.mp4", rng.integers(0, 255, (16, 16, 32, 3), dtype=np.uint8))
    write_video(B / "short" / "s.mp4", rng.integers(0, 255, (5, 16, 32, 3), dtype=np.uint8))
    video = (B / "good.mp4").read_bytes()
    files = {
        "zero.mp4": b"", "trunc.mp4": video[: len(video) // 2], "renamed.mp4": "a text file renamed .mp4",
        "afile": "a regular file in the way", "zero.png": b"", "img.png": "text renamed .png", "zero.yaml": "",
        "bad.yaml": "task: toy\ntrainer: [unclosed\n", "list.yaml": "- 1\n- 2\n", "zero.hdf5": b"",
        "txt.hdf5": "text renamed .hdf5", "zero.safetensors": b"", "ctl_zero.csv": b"",
        "nan.csv": "video,frame,x,y,yaw\ngood.mp4,0,nan,0,0\n", "text.csv": "video,frame,x,y,yaw\ngood.mp4,0,a,b,c\n",
        "badcol.csv": "name,t,x\n", "str.json": json.dumps({"good": {"poses": [["a", "b", "c"]]}}),
        "inf.json": '{"good": {"poses": [[0, 0, Infinity]]}}', "broken.json": "{not json",
        "short.json": json.dumps({"good": {"poses": [[0, 0, 0]] * 2}}),
        "ctl_nan.json": '{"speed": [NaN, 1], "yaw_rate": [0, 0]}', "ctl_str.json": '{"speed": ["fast"], "yaw_rate": [0]}',
        "ctl_bad.json": "[1, 2", "ctl_list.json": "[1, 2]", "ctl_badhdr.csv": "a;b\n1;2\n",
        "ctl_inf.csv": "speed,yaw_rate\ninf,0\n", "only_zero/zero.mp4": b"", "only_trunc/trunc.mp4": video[:2000],
        "only_renamed/renamed.mp4": "text", "only_txt/notes.txt": "notes",
    }
    for name, text in files.items():
        _write(B / name, text)
    (B / "empty").mkdir()
    shutil.copy(B / "good.mp4", _write(B / "ok" / "good.mp4", b""))
    weights = (tokenizer_dir / "model.safetensors").read_bytes()
    for name, w in {"tok_zero": b"", "tok_trunc": weights[: len(weights) // 2], "tok_txt": b"text renamed"}.items():
        shutil.copy(tokenizer_dir / "config.yaml", _write(B / name / "config.yaml", ""))
        _write(B / name / "model.safetensors", w)
    _write(B / "tok_badyaml" / "config.yaml", "model: [\n")
    shutil.copy(tokenizer_dir / "model.safetensors", B / "tok_badyaml")
    _write(B / "pgd_badjson" / "pgd.json", "{")
    shutil.copy(offline["pgd"] / "model.safetensors", B / "pgd_badjson")
    _write(B / "pgd_zero" / "model.safetensors", b"")
    shutil.copy(offline["pgd"] / "pgd.json", B / "pgd_zero")
    _write(B / "pol_zero" / "policy.safetensors", b"")
    shutil.copy(offline["policy"] / "policy.json", B / "pol_zero")
    _write(B / "finished" / "model.safetensors", b"weights of an earlier run")
    return B


@pytest.fixture(scope="module")
def fx(bad, episodes, tokenizer_dir, gpt_run, artv_dir, offline) -> dict:
    return {"B": bad, "eps": episodes, "tok": tokenizer_dir, "gpt": gpt_run[0], "tokens": gpt_run[1],
            "artv": artv_dir, "pgd": offline["pgd"], "policy": offline["policy"], "R": ROOT}


def _files(roots) -> set:
    return {p for root in roots for p in Path(root).rglob("*")}


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    capsys.readouterr()
    try:
        rc = cli(argv)
    except SystemExit as e:  # argparse's own refusals (a word where a number belongs ...)
        rc = e.code
    return rc, capsys.readouterr().err


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("case,command,expected", CASES, ids=[c[0] for c in CASES])
def test_hostile_input_is_a_clean_error(case, command, expected, fx, tmp_path, capsys):
    argv = shlex.split(command.format(T=tmp_path, **fx))
    roots = [tmp_path, *{fx[k].parent if k in ("gpt", "tokens") else fx[k] for k in fx if k != "R"}]
    before = _files(roots)
    rc, err = run_cli(argv, capsys)
    lines = [line for line in err.splitlines() if "error: " in line]
    if os.environ.get("WORLDGEN_RECORD_INPUTS"):
        with open(os.environ["WORLDGEN_RECORD_INPUTS"], "a") as f:
            f.write(json.dumps({"case": case, "command": "worldgen " + command, "rc": rc,
                                "message": lines[-1].split("error: ", 1)[-1] if lines else err[-300:]}) + "\n")
    assert "Traceback" not in err and rc == 2, err[-2000:]
    assert lines, err[-2000:]
    assert re.search(expected, lines[-1]), lines[-1]
    assert _files(roots) == before, sorted(map(str, _files(roots) - before))


def test_a_run_failing_before_its_first_step_leaves_no_folder(tmp_path, capsys, monkeypatch):
    """The data loader fails inside ``trainer.fit`` (after the config was saved): the new out_dir goes again."""
    from worldgen.lit import toy

    def broken(self):
        raise ValueError("data: the training set cannot be read (simulated)")

    monkeypatch.setattr(toy.ToyDataModule, "train_dataloader", broken)
    rc, err = run_cli(shlex.split(TOY.format(R=ROOT, T=tmp_path)), capsys)
    assert rc == 2 and "error: data: the training set cannot be read" in err and not (tmp_path / "run").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into any folder, so permissions cannot be tested")
def test_an_unwritable_output_folder_is_refused_before_work(fx, tmp_path, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        rc, err = run_cli(["data", "convert", str(fx["B"] / "ok"), "--out", str(locked / "ds")], capsys)
    finally:
        locked.chmod(0o700)
    assert rc == 2 and "cannot be written, no write permission in" in err and not list(locked.iterdir())


def test_existing_outputs_that_are_kept_or_resumed(fx, tmp_path, capsys):
    """Outputs that exist already and are fine to meet: a converted dataset is resumed (its episodes skipped, never
    rewritten), an output file is replaced whole (written beside it, then renamed)."""
    out, convert = tmp_path / "ds", ["data", "convert", str(fx["B"] / "ok"), "--out", str(tmp_path / "ds")]
    assert run_cli(convert, capsys)[0] == 0
    video = out / "episodes" / "good" / "video.mp4"
    stamp = video.stat().st_mtime_ns
    capsys.readouterr()
    assert cli(convert) == 0 and json.loads(capsys.readouterr().out)["skipped_existing"] == 1
    assert video.stat().st_mtime_ns == stamp
    fvd = ["eval", "fvd", "--real", str(fx["eps"]), "--fake", str(fx["eps"]), "--out", str(tmp_path / "f.json"),
           "--detector", "random", "--size", "32"]
    (tmp_path / "f.json").write_text("an older result")
    assert run_cli(fvd, capsys)[0] == 0 and json.loads((tmp_path / "f.json").read_text())["fvd"] == pytest.approx(0)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.slow  # subprocess, ~10 s
def test_convert_killed_mid_write_then_rerun(tmp_path):
    """kill -9 while ``worldgen data convert`` writes; the rerun finishes the dataset and no temporary file is left."""
    from worldgen.data.video import write_video

    src, out, n = tmp_path / "rec", tmp_path / "ds", 12
    rng = np.random.default_rng(0)
    for i in range(n):
        write_video(src / f"drive_{i:02d}.mp4", rng.integers(0, 255, (48, 128, 256, 3), dtype=np.uint8))
    cmd = cli_cmd("data", "convert", str(src), "--out", str(out), "--size", "128x256", "--fps", "0")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and not list((out / "episodes").glob("drive_*/meta.json")):
        time.sleep(0.02)
    time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = len(list((out / "episodes").glob("drive_*/meta.json")))
    assert 1 <= done < n, f"the kill came too late to test anything ({done} of {n} episodes written)"
    _write(out / "episodes" / f".drive_{n - 1:02d}.abcd1234.tmp" / "video.mp4", b"half a video")  # as if killed here
    rerun = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    summary = json.loads(rerun.stdout)
    assert summary["written"] + summary["skipped_existing"] == n and summary["dataset_episodes"] == n
    assert summary["skipped_existing"] == done
    leftovers = [p for p in out.rglob("*") if p.name.startswith(".") or p.suffix == ".tmp"]
    assert not leftovers, leftovers
