"""In-memory fakes of the transport and the chain: daemon-step tests without processes."""
