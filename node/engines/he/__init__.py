"""The HE engine: evaluates a requester's ciphertexts in an isolated child process."""
