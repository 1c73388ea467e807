"""engines/transformers"""
