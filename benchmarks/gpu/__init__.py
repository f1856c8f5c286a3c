"""The GPU benchmark suite: translation, training and the image-filter embedding pass on one GPU,
prepared on a CPU machine (prepare.sh) and run there in one call (run.sh); see BENCHMARKS.md, "GPU".

Every part runs in its own process under its own time budget and records its figures (or why it
skipped them) as it goes, so a part that runs out of time or crashes still leaves what it measured.
"""
