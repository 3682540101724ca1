MOD = 65521


def adler32(data: bytes) -> int:
    a, b = 1, 0
    for byte in data:
        a = (a + byte) % MOD
        b = (b + a) % MOD
    return (b << 16) | a


def main(path: str) -> None:
    with open(path, "rb") as f:
        print(adler32(f.read()))
