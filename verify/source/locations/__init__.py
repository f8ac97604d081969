"""Where release bytes come from: python.org's layout over HTTP, mirrors, local directories, Debian."""
