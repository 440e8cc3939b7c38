"""DROL's online classifier (Zhou et al., AAAI 2020), family-agnostic: it needs only a
tracker's search features, a score map to fuse with before the cosine window, and λ."""
