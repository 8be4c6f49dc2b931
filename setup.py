"""mcmia_tf: small and private deep networks for phones and microcontrollers."""

import setuptools

setuptools.setup(
    name="mcmia_tf",
    version="0.1.0",
    description=(
        "Dynamic-regularization pruning, membership-inference defences and audits, "
        "and TFLite export for tf_keras models."
    ),
    packages=setuptools.find_packages(include=["mcmia_tf", "mcmia_tf.*", "tflite_export",
                                               "tflite_export.*", "pipelines", "pipelines.*"]),
    python_requires=">=3.11,<3.12",
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "tf-keras>=2.21,<2.22",
        "tensorflow-model-optimization>=0.8.1,<0.9",
        "tensorflow-privacy==0.9.0",
        "dp-accounting>=0.4.3,<0.5",
        "tensorflow-datasets>=4.9,<5",
        "absl-py>=1.0,<2",
        "ai-edge-litert>=2.3,<3",
        "tflite-micro",
        "scikit-learn>=1.3,<2",
        "matplotlib>=3.7,<4",
        "numpy>=1.23,<2",
        "scipy>=1.9,<2",
    ],
    extras_require={
        "dev": ["pytest>=8"],
        # The documentation site (mkdocs.yml); tests/test_docs.py builds it.
        "docs": ["mkdocs>=1.6,<2", "mkdocstrings[python]>=1.0,<2", "mkdocstrings-python>=2.0,<3",
                 "griffelib>=2.4,<3"],
    },
)
