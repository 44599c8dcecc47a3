# cmake/packaging.cmake — install() rules and a CPack .deb.
#
# Owns: what `cmake --install` puts where (the yard binary, timing profiles,
# sample configs, systemd units, the README and hardened-bus sample) and the
# Debian package built from it (`cpack -G DEB` in the build folder; shlibdeps
# fill Depends from the binary's libraries). Must not touch: build targets.
include(GNUInstallDirs)

# Keep the run path of libraries outside the build tree (the CUDA toolkit's, when built with CUDA).
set_target_properties(yard PROPERTIES INSTALL_RPATH_USE_LINK_PATH TRUE)
install(TARGETS yard RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(FILES profiles/default.json DESTINATION ${CMAKE_INSTALL_DATADIR}/switchyard/profiles)
# Absolute: /etc, not <prefix>/etc (conffiles of the package).
install(FILES packaging/etc/agent.toml packaging/etc/switchyard.env DESTINATION /etc/switchyard)
install(FILES docs/hardened/nats-server.conf DESTINATION ${CMAKE_INSTALL_DOCDIR}/hardened)
install(FILES README.md DESTINATION ${CMAKE_INSTALL_DOCDIR})
# Units go to the systemd system directory of a Debian package (/lib/systemd/system).
set(YARD_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING "where the systemd units are installed (relative to the prefix root)")
install(FILES packaging/systemd/switchyard-agent.service packaging/systemd/switchyard-frontend.service
              packaging/systemd/switchyard-router.service
        DESTINATION ${YARD_SYSTEMD_UNIT_DIR})

set(CPACK_GENERATOR "DEB")
set(CPACK_PACKAGE_NAME "switchyard")
set(CPACK_PACKAGE_VERSION "0.2.0")
set(CPACK_PACKAGE_CONTACT "Switchyard developers <switchyard@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "Distributed LLM-inference runtime: KV-aware routing, tiered KV cache, supervision")
set(CPACK_PACKAGING_INSTALL_PREFIX "/usr")
set(CPACK_STRIP_FILES ON)  # the RelWithDebInfo binary is ~200 MB with debug info
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION "net")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
# The CUDA runtime comes from NVIDIA's toolkit, not a Debian package: no Depends for it.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS "/usr/local/cuda/lib64;/usr/local/cuda/lib;/usr/local/cuda/targets/x86_64-linux/lib")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS "nats-server, ucx-utils")
set(CPACK_DEBIAN_COMPRESSION_TYPE "gzip")
# /etc files are conffiles: an upgrade keeps the operator's edits.
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA "${PROJECT_SOURCE_DIR}/packaging/debian/conffiles")
include(CPack)
