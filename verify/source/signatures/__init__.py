"""Release signature checks: OpenPGP (python-gnupg), Sigstore (sigstore-python), and the policy over them."""
