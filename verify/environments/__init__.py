"""Pinned build environments: lock files, reproducible rootfs tarballs, and the sandboxes that run them."""
