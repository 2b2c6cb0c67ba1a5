"""A python-socketio client, written as a plain Socket.IO user writes one
(one-argument handlers, no evcontract code), against chat-server with room
history on: it joins a thread, receives the messages another client sends
(over long-polling), and gets its acks.

    python plain_client.py <server url> <token a> <token b>
"""

import sys
import threading

import socketio

url, token_a, token_b = sys.argv[1:4]
NS = "/chat"
got = []
done = threading.Event()

reader = socketio.Client()
writer = socketio.Client()


@reader.on("new_message", namespace=NS)
def on_new_message(data):
    got.append(data["message"]["content"])
    if len(got) == 3:
        done.set()


reader.connect(url, namespaces=[NS], auth={"token": token_a}, transports=["websocket"])
writer.connect(url, namespaces=[NS], auth={"token": token_b}, transports=["polling"])
for client in (reader, writer):
    ack = client.call("join_thread", {"threadId": "python"}, namespace=NS, timeout=10)
    assert ack["success"], ack
for i in range(3):
    ack = writer.call("send_message", {"threadId": "python", "content": f"py{i}"}, namespace=NS, timeout=10)
    assert ack["success"], ack
assert done.wait(10), f"messages received: {got}"
assert got == ["py0", "py1", "py2"], got
reader.disconnect()
writer.disconnect()
print("python-socketio: 3 messages in order, acks received")
