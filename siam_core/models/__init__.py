"""Networks: backbones, necks, heads and the Siamese model that joins them."""
