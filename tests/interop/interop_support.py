"""What the Python interop scripts share: running cases and reporting them,
and protobuf encoded by hand (grpcio without codegen)."""

import sys
import traceback

# RFC 6749 section 5.2: %x20-21 / %x23-5B / %x5D-7E.
ALLOWED = {chr(c) for c in [0x20, 0x21, *range(0x23, 0x5C), *range(0x5D, 0x7F)]}

results = []


def case(function):
    try:
        function()
        results.append((function.__name__, None))
        print(f"ok {function.__name__}", flush=True)
    except Exception as error:  # a case's failure is reported, not raised
        detail = "".join(traceback.format_exception_only(type(error), error)).strip()
        results.append((function.__name__, detail))
        print(f"FAILED {function.__name__}: {detail}", flush=True)
    return function


def finish():
    """Prints the count and exits non-zero when any case failed."""
    failed = [name for name, why in results if why]
    print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    sys.exit(1 if failed else 0)


# --- protobuf by hand: length-delimited fields and varints ---


def field(number, value):
    data = value.encode()
    return bytes([number << 3 | 2]) + varint(len(data)) + data


def varint(n):
    out = b""
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out += bytes([byte | 0x80])
        else:
            return out + bytes([byte])


def first_string_field(message, wanted):
    at = 0
    while at < len(message):
        key, at = read_varint(message, at)
        number, kind = key >> 3, key & 7
        if kind == 2:
            length, at = read_varint(message, at)
            value, at = message[at : at + length], at + length
            if number == wanted:
                return value.decode()
        elif kind == 0:
            _, at = read_varint(message, at)
        else:
            raise ValueError(f"unexpected wire type {kind}")
    return None


def read_varint(data, at):
    shift = result = 0
    while True:
        byte = data[at]
        at += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, at


def first_bytes_field(message, wanted):
    at = 0
    while at < len(message):
        key, at = read_varint(message, at)
        if key & 7 == 2:
            length, at = read_varint(message, at)
            value, at = message[at : at + length], at + length
            if key >> 3 == wanted:
                return value
        else:
            _, at = read_varint(message, at)
    return None


def oauth_code_of(error):
    """The OAuth code of a grpcio error: google.rpc.Status.details (3) holds
    an Any whose value (2) is an ErrorInfo, whose reason (1) is the code."""
    status = dict(error.trailing_metadata())["grpc-status-details-bin"]
    return first_string_field(first_bytes_field(first_bytes_field(status, 3), 2), 1)
