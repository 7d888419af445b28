"""Events: the embedded NATS JetStream server and what publishes to and consumes from it."""
