"""The pipeline's stages, in the order a customer's models go through them:
data → training → packaging → deployment. Each package exports what the flows call."""
