"""Rate-distortion: bytes per image against picture quality, aec beside classic codecs and learned baselines."""
