"""Models capbuild runs over images and captions: the dual-encoder loader shared by the image
filters (CLIP score, near-duplicates) and `capbuild eval`."""
