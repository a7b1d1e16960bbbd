#!/usr/bin/python3
"""osc.py PORT ADDRESS [TYPES ARGS...]: sends one OSC message to
127.0.0.1:PORT over UDP (encoded here, to the OSC 1.0 spec: padded strings,
big-endian int32/float32). With ADDRESS /cbrnn/status it adds its own reply
port, waits up to 5 s for cbrnn-jack's reply and prints
'frames loss xruns dropped'; exit 1 if none comes."""
import socket
import struct
import sys


def pad(b):
    b += b"\0"
    return b + b"\0" * (-len(b) % 4)


def encode(address, types, args):
    out = pad(address.encode()) + pad(("," + types).encode())
    for t, a in zip(types, args):
        if t == "i":
            out += struct.pack(">i", int(a))
        elif t == "f":
            out += struct.pack(">f", float(a))
        elif t == "s":
            out += pad(a.encode())
        else:
            raise SystemExit("osc.py: type %r not supported" % t)
    return out


def bundle(messages):
    """An OSC bundle, time tag 1 ("immediately"), of encoded messages."""
    out = pad(b"#bundle") + struct.pack(">Q", 1)
    for m in messages:
        out += struct.pack(">i", len(m)) + m
    return out


def decode(msg):
    end = msg.index(b"\0")
    addr = msg[:end].decode()
    pos = (end + 4) & ~3
    tend = msg.index(b"\0", pos)
    types = msg[pos + 1:tend].decode()
    pos = (tend + 4) & ~3
    vals = []
    for t in types:
        if t == "h":
            vals.append(struct.unpack(">q", msg[pos:pos + 8])[0])
            pos += 8
        elif t == "f":
            vals.append(struct.unpack(">f", msg[pos:pos + 4])[0])
            pos += 4
        elif t == "i":
            vals.append(struct.unpack(">i", msg[pos:pos + 4])[0])
            pos += 4
    return addr, types, vals


def main():
    port, address = int(sys.argv[1]), sys.argv[2]
    types = sys.argv[3] if len(sys.argv) > 3 else ""
    args = sys.argv[4:]
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    if address == "/cbrnn/status":
        types, args = "i", [s.getsockname()[1]]
    s.sendto(encode(address, types, args), ("127.0.0.1", port))
    if address != "/cbrnn/status":
        return 0
    s.settimeout(5.0)
    try:
        data, _ = s.recvfrom(1024)
    except socket.timeout:
        print("osc.py: no reply to /cbrnn/status within 5 s")
        return 1
    addr, t, vals = decode(data)
    if addr != "/cbrnn/status" or t != "hfhh":
        print("osc.py: unexpected reply %s %s %s" % (addr, t, vals))
        return 1
    print("%d %.6g %d %d" % tuple(vals))
    return 0


if __name__ == "__main__":
    sys.exit(main())
