/* The release version of Samsa's programs. */
#ifndef SAMSA_VERSION_H
#define SAMSA_VERSION_H
#define SAMSA_VERSION "0.1.0"
#endif
