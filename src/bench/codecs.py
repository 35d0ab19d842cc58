# idfcodec bench's Python helper (embedded in the binary by src/bench/python.rs): codes images
# with one Python codec module, one JSON request per line on stdin, one JSON answer per line on
# stdout. Usage: python -c "$(cat codecs.py)" oxipng|jpegls
#
# First answer: {"ready": "<module and version>"} or {"error": "..."} (then it exits).
# Request: {"png": PATH, "raw": PATH, "width": W, "height": H, "channels": C,
#           "bytes_per_sample": 1|2, "out": PATH}   ("raw": native-endian samples, row-major)
# Answer:  {"bytes": N, "encode_s": S, "decode_s": S|null, "same": true|false|null,
#           "peak_bytes": N|null}, {"unsupported": "why"} or {"error": "..."}.
# decode_s and same are null when the output is a PNG that the caller decodes and checks itself.
# peak_bytes: how far the process's peak RSS rose above its RSS while serving the request
# (VmHWM after resetting it through /proc/self/clear_refs), as idfcodec measures its own.
import json
import sys
import time


def status_kib(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return status_kib("VmRSS")
    except OSError:
        return None


def peak_growth(start):
    hwm = status_kib("VmHWM") if start is not None else None
    return None if hwm is None else max(0, hwm - start) * 1024


def oxipng_codec():
    import oxipng
    from importlib.metadata import version

    def code(req):
        with open(req["png"], "rb") as f:
            data = f.read()
        t = time.perf_counter()
        out = oxipng.optimize_from_memory(data, level=6, strip=oxipng.StripChunks.all())
        encode = time.perf_counter() - t
        with open(req["out"], "wb") as f:
            f.write(out)
        return {"bytes": len(out), "encode_s": encode, "decode_s": None, "same": None}

    return code, f"pyoxipng {version('pyoxipng')}, level 6 (max), strip all"


def jpegls_codec():
    import imagecodecs
    import numpy as np

    if not imagecodecs.JPEGLS.available:
        raise ImportError("this imagecodecs has no JPEG-LS (CharLS)")

    def code(req):
        if req["channels"] == 2:
            return {"unsupported": "gray+alpha (JPEG-LS here takes 1, 3 or 4 channels)"}
        dtype = np.uint8 if req["bytes_per_sample"] == 1 else np.uint16
        shape = (req["height"], req["width"], req["channels"])
        pixels = np.fromfile(req["raw"], dtype=dtype).reshape(shape)
        if req["channels"] == 1:
            pixels = pixels[:, :, 0]
        t = time.perf_counter()
        out = imagecodecs.jpegls_encode(pixels)
        encode = time.perf_counter() - t
        t = time.perf_counter()
        back = imagecodecs.jpegls_decode(out)
        decode = time.perf_counter() - t
        with open(req["out"], "wb") as f:
            f.write(out)
        same = back.shape == pixels.shape and bool(np.array_equal(back, pixels))
        return {"bytes": len(out), "encode_s": encode, "decode_s": decode, "same": same}

    charls = imagecodecs.version(dict).get("charls")
    return code, f"imagecodecs {imagecodecs.__version__} (CharLS {charls}), lossless"


def answer(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def main():
    codecs = {"oxipng": oxipng_codec, "jpegls": jpegls_codec}
    try:
        code, description = codecs[sys.argv[1]]()
    except Exception as e:  # a missing module is the usual case
        answer({"error": f"{type(e).__name__}: {e}"})
        return
    answer({"ready": description})
    for line in sys.stdin:
        try:
            start = reset_peak()
            result = code(json.loads(line))
            result["peak_bytes"] = peak_growth(start)
        except Exception as e:
            result = {"error": f"{type(e).__name__}: {e}"}
        answer(result)


main()
