"""The networks the losses need, in Flax: dlib's face-recognition ResNet, the VGGFace2
ResNet50, VGG19."""
