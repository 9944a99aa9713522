"""The author's semi-supervised GMVAE, transcribed to plain PyTorch: the reference of
``bench/against_reference.py``.

The author's code (github.com/jariasf/semisupervised-vae-metric-embedding, TensorFlow 1
graphs: ``networks/CatVAENetwork.py``, ``losses/LossFunctions.py``,
``utils/assignment.py``, ``model/SSVAE.py``, MNIST settings of ``run.sh``) as eager fp32
PyTorch with the same network, initialisation, losses, batches, optimizer and schedules;
docs/PERFORMANCE.md says how it was checked against the TensorFlow code. It is written
for timing and time to accuracy, not as a second implementation to use: gmvae's own
model (Section 3 of the paper) differs from it in several places (docs/ARCHITECTURE.md).
"""
