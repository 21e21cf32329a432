"""Files service throughput: encrypted upload/download vs raw gRPC streaming of the same bytes."""
