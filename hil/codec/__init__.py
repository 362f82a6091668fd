"""Sans-IO codecs: bytes in, typed messages out, and back.  No I/O, no simulator, no asyncio."""
