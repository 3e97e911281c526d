"""The santebus gateway daemon: config, composition root, supervision, pipeline, outbox, MQTT."""
