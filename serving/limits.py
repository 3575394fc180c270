"""Limits that the server and the client share."""

# gRPC's default of 4 MB holds about 6,000 PNG digits; a batch of full MNIST is larger.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
GRPC_MESSAGE_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
]
