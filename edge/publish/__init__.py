"""Publishing to the departmental backend over MQTT 5 (QoS 1) and handling its acks."""
