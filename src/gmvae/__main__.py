from gmvae.cli import main

main()
