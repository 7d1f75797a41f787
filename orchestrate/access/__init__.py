"""The IAM policies a person attaches by hand: the SageMaker execution role's, and the review
loop's two (labelling, release); ``orchestrate policy NAME`` prints one filled for the stack."""
